"""Hand-made evaluator backends and run-folder helpers for the generation-task tests.

Fakes follow the backends API (`.name`, `.standin`, one method each) and return scripted values,
so a scoring rule can be checked against numbers computed by hand.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from lavida_bench.backends import Backends, BackendsConfig
from lavida_bench.tasks.base import ScoreContext


def shared_data() -> Path:
    """The official metadata files next to the repository (`../shared/data`), as the project
    provides them; the workspace path is the fallback for a clone made elsewhere."""
    candidates = (Path(__file__).resolve().parents[2].parent / "shared" / "data", Path("/work/shared/data"))
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED_DATA = shared_data()


def shared_file(*parts: str) -> Path:
    """A path under the official metadata folder, or skip the calling test naming what is missing
    (a clone without `../shared/data`; CI has the folder and runs these tests)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path}, which is not there (official benchmark metadata, provided as "
                    f"../shared/data next to the repository)")
    return path


@dataclass
class Det:
    """A detection as the detector backends return it."""

    label: str
    score: float
    box: tuple[float, float, float, float] = (0.0, 0.0, 10.0, 10.0)
    mask: np.ndarray | None = None


@dataclass
class ScriptedDetector:
    detections: list[Det]
    name: str = "scripted"
    standin: bool = True

    def detect(self, image: Image.Image) -> list[Det]:
        return list(self.detections)


@dataclass
class ScriptedVQA:
    """Answers from a question -> answer table (default "no"), recording what it was asked."""

    answers: dict[str, str]
    asked: list[str] = field(default_factory=list)
    name: str = "scripted"
    standin: bool = True

    def answer(self, image: Image.Image, question: str) -> str:
        self.asked.append(question)
        return self.answers.get(question, "no")


@dataclass
class ScriptedJudge:
    """Replies with `reply`, or raises `error`; records each call's key, prompt and images."""

    reply: str = ""
    error: Exception | None = None
    calls: list[tuple[str, str, list[Image.Image]]] = field(default_factory=list)
    name: str = "scripted"
    standin: bool = True

    def judge(self, key: str, prompt: str, images: list[Image.Image]) -> str:
        self.calls.append((key, prompt, images))
        if self.error is not None:
            raise self.error
        return self.reply


def fake_backends(**kinds: Any) -> SimpleNamespace:
    return SimpleNamespace(cfg=BackendsConfig.standins(), **kinds)


def standin_context(run_dir: Path, **cfg: Any) -> ScoreContext:
    """The real `Backends` with every kind served by its stand-in, named as a user would."""
    return ScoreContext(run_dir=run_dir, backends=Backends(replace(BackendsConfig.standins(), **cfg)))


def store_image(run_dir: Path, image: Image.Image, name: str = "out.png") -> dict[str, Any]:
    """Save `image` as the runner would and return the stored output mapping."""
    rel = f"images/test/{name}"
    (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    image.save(run_dir / rel)
    return {"image": rel, "attempts": [], "trace": {}}
