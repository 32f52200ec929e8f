"""Evaluator backends: the external models a benchmark's scorer needs.

Five kinds, each a small interface with the official model, documented alternatives and a
deterministic stand-in (for the demo and tests, labelled `standin=True` everywhere):

- detector  `detect(image) -> list[Detection]`           GenEval objects with instance masks
- color     `classify(crops, colors, obj=None) -> list[str]`   GenEval colour attribute
- vqa       `answer(image, question) -> str`             DPG-Bench questions
- inception `features(images) -> float64 [N, 2048]`      FID (helpers in `backends.fid`)
- judge     `judge(key, prompt, images) -> str`          ImgEdit rubric replies

`Backends(cfg)` validates names and local paths up front (before any GPU time is spent), builds
each backend lazily on first use, and `fingerprints()` describes them all for the run manifest.
Nothing here ever downloads: every weight comes from a local path named in the config.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from lavida_bench.backends.base import Backend
from lavida_bench.backends.detection import Detection
from lavida_bench.fingerprint import path_fingerprint
from lavida_bench.registry import Registry

__all__ = ["BACKENDS", "KINDS", "Backend", "Backends", "BackendsConfig", "Detection", "config_problems"]


@dataclass
class BackendsConfig:
    """Which backend of each kind, and where its local weights are (`None` = not given).

    `Optional[X]` rather than `X | None`: lavida_bench.config's schema check reads typing.Union.
    """

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
    judge_model: str = "gpt-4o"  # ImgEdit's code default (benchmarks.md §4.4)
    judge_api_key_env: str = "OPENAI_API_KEY"  # name of the variable, never the key itself
    judge_cache: Optional[str] = None
    judge_timeout_s: float = 60.0
    judge_max_retries: int = 4
    # Added by the backends module (all optional):
    judge_backoff_s: float = 2.0  # first retry delay; doubles per retry, capped at 60 s
    detector_classes: Optional[str] = None  # GenEval's object_names.txt (class names by index)
    detector_config: Optional[str] = None  # mmdet only: config file (default: GenEval's lookup)
    detector_min_score: float = 0.1  # below GenEval's lowest threshold (0.3), so harmless
    inception_mode: str = "clean"  # clean-fid mode; "clean" is clean-fid's default (§3.4)
    device: str = "auto"  # "auto" = cuda when visible, else cpu


KINDS = ("detector", "color", "vqa", "inception", "judge")

# name -> "module:Class"; classes are imported only when used (no torch/transformers at import).
_M = "lavida_bench.backends"
BACKENDS: dict[str, Registry[type[Backend]]] = {
    "detector": Registry("detector backend", {
        "standin": f"{_M}.standins:StandinDetector",
        "mask2former": f"{_M}.detection:Mask2FormerDetector",
        "mmdet": f"{_M}.detection:MMDetDetector",
    }),
    "color": Registry("color backend", {
        "standin": f"{_M}.standins:StandinColor",
        "clip": f"{_M}.color:ClipColorClassifier",
        "open_clip": f"{_M}.color:OpenClipColorClassifier",
    }),
    "vqa": Registry("vqa backend", {
        "standin": f"{_M}.standins:StandinVQA",
        "blip": f"{_M}.vqa:BlipVQA",
        "mplug": f"{_M}.vqa:MplugVQA",
    }),
    "inception": Registry("inception backend", {
        "standin": f"{_M}.standins:StandinInception",
        "clean_fid": f"{_M}.fid:CleanFidInception",
        "torchmetrics": f"{_M}.fid:TorchmetricsInception",
    }),
    "judge": Registry("judge backend", {
        "standin": f"{_M}.standins:StandinJudge",
        "openai": f"{_M}.judge:OpenAIJudge",
    }),
}


def backend_class(kind: str, name: str) -> type[Backend]:
    """The class registered as `name` for `kind`; ValueError listing the choices otherwise."""
    registry = BACKENDS[kind]
    if name not in registry:
        raise ValueError(f"backends.{kind}={name!r} is not a known {kind} backend; "
                         f"choose one of: {', '.join(registry.names())}")
    return registry.get(name)


STANDIN_NOTE = "deterministic stand-in for the shapes world: its numbers mean nothing for real images"


def _check_fid_reference(cfg: BackendsConfig) -> None:
    if cfg.fid_reference and not Path(cfg.fid_reference).exists():
        raise FileNotFoundError(f"backends.fid_reference={cfg.fid_reference} does not exist: put a .npz "
                                f"with mu/sigma or a folder of reference images there")


def config_problems(cfg: BackendsConfig) -> list[str]:
    """Every problem of a backends config at once (for `lavida-bench validate`), loading nothing."""
    problems = []
    for kind in KINDS:
        try:
            backend_class(kind, getattr(cfg, kind)).check(cfg)
        except (ValueError, FileNotFoundError) as err:
            problems.append(str(err))
    try:
        _check_fid_reference(cfg)
    except FileNotFoundError as err:
        problems.append(str(err))
    return problems


class Backends:
    """The configured evaluator backends, built lazily.

    `cache_dir` (optional) is where backends keep what they computed once: the judge's reply
    cache when `judge_cache` is not set, FID reference statistics computed from an image folder.
    The runner may pass the run folder so that a re-score never pays for a judgment twice.
    """

    def __init__(self, cfg: BackendsConfig, cache_dir: str | Path | None = None):
        self.cfg = cfg
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._classes = {kind: backend_class(kind, getattr(cfg, kind)) for kind in KINDS}
        for cls in self._classes.values():  # missing weights fail now, not after generation
            cls.check(cfg)
        _check_fid_reference(cfg)
        self._built: dict[str, Backend] = {}

    def _get(self, kind: str) -> Any:
        if kind not in self._built:
            cls = self._classes[kind]
            self._built[kind] = cls.from_config(self.cfg, cache_dir=self.cache_dir)
        return self._built[kind]

    @property
    def detector(self) -> Any:
        return self._get("detector")

    @property
    def color(self) -> Any:
        return self._get("color")

    @property
    def vqa(self) -> Any:
        return self._get("vqa")

    @property
    def inception(self) -> Any:
        return self._get("inception")

    @property
    def judge(self) -> Any:
        return self._get("judge")

    def fid_reference_stats(self) -> tuple[Any, Any]:
        """(mu, sigma) of `backends.fid_reference`; an image folder is featurised once with this
        inception backend and cached in `cache_dir`."""
        if not self.cfg.fid_reference:
            raise FileNotFoundError("backends.fid_reference is not set: put a .npz with mu/sigma or a "
                                    "folder of reference images there")
        from lavida_bench.backends.fid import reference_stats

        folder = Path(self.cfg.fid_reference).is_dir()
        return reference_stats(self.cfg.fid_reference, self.inception if folder else None, self.cache_dir)

    def standin_kinds(self) -> list[str]:
        """Kinds served by a stand-in (reports say that their numbers mean nothing)."""
        return [kind for kind, cls in self._classes.items() if cls.standin]

    def fingerprints(self) -> dict[str, dict[str, Any]]:
        """Per kind: name, stand-in flag, weights fingerprint and backend facts (no loading)."""
        out: dict[str, dict[str, Any]] = {}
        for kind, cls in self._classes.items():
            entry: dict[str, Any] = {"name": cls.name, "standin": cls.standin}
            if cls.standin:
                entry["note"] = STANDIN_NOTE
            if cls.path_key:
                entry["weights"] = path_fingerprint(getattr(self.cfg, cls.path_key))
            entry.update(cls.describe(self.cfg))
            out[kind] = entry
        if self.cfg.fid_reference:
            out["inception"]["fid_reference"] = path_fingerprint(self.cfg.fid_reference)
        return out
