"""Evaluator backends (placeholder until the backends module lands)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class BackendsConfig:
    detector: str = "standin"
    detector_path: Optional[str] = None
    color: str = "standin"
    color_path: Optional[str] = None
    vqa: str = "standin"
    vqa_path: Optional[str] = None
    inception: str = "standin"
    inception_path: Optional[str] = None
    fid_reference: Optional[str] = None
    judge: str = "standin"
    judge_url: Optional[str] = None
    judge_model: str = "gpt-4o"
    judge_api_key_env: str = "OPENAI_API_KEY"
    judge_cache: Optional[str] = None
    judge_timeout_s: float = 60.0
    judge_max_retries: int = 4


class Backends:
    def __init__(self, cfg: BackendsConfig):
        self.cfg = cfg

    def fingerprints(self) -> dict[str, Any]:
        return {}
