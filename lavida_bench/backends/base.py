"""What every evaluator backend is: a named object built from `BackendsConfig`.

`name` is the value users put in the config (`backends.detector=mask2former`), `standin` marks
the deterministic fakes so that every result and report can say so, and `path_key` names the
config field holding the backend's local weights (fingerprinted into the manifest).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lavida_bench.backends.local import require_path

if TYPE_CHECKING:  # BackendsConfig lives in the package __init__, which imports nothing from here
    from lavida_bench.backends import BackendsConfig


class Backend:
    name: ClassVar[str]
    standin: ClassVar[bool] = False
    path_key: ClassVar[str | None] = None  # e.g. "detector_path"
    path_hint: ClassVar[str] = ""  # what to put at that path, for error messages

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> Backend:
        """Build the backend (loading weights from local paths only); `cache_dir` is where it may
        keep what it computed once (judge replies, reference statistics)."""
        return cls()

    @classmethod
    def check(cls, cfg: BackendsConfig) -> None:
        """Raise now (before any generation) if the config cannot build this backend: by default,
        FileNotFoundError when its local weights are missing. Loads nothing."""
        if cls.path_key:
            require_path(getattr(cfg, cls.path_key), cls.path_key, cls.path_hint)

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, Any]:
        """Extra manifest facts beyond name/stand-in/weights (modes, class lists, endpoints)."""
        return {}
