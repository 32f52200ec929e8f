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

No kind has a default: a config whose tasks need an evaluator must name it (`unset_evaluators`
turns an omission into a config error naming the key and the official choice), and the
stand-ins are used only where a config says `standin` (the demo preset does).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from lavida_bench.backends.base import Backend
from lavida_bench.backends.detection import Detection
from lavida_bench.fingerprint import path_fingerprint
from lavida_bench.registry import Registry

__all__ = ["BACKENDS", "KINDS", "OFFICIAL", "Backend", "Backends", "BackendsConfig", "Detection", "config_problems",
           "unset_evaluators"]


@dataclass
class BackendsConfig:
    """Which backend of each kind, and where its local weights are (`None` = not given).

    `Optional[X]` rather than `X | None`: lavida_bench.config's schema check reads typing.Union.
    """

    detector: Optional[str] = None  # None: not set; a task that needs it makes the config invalid
    detector_path: Optional[str] = None
    color: Optional[str] = None
    color_path: Optional[str] = None
    vqa: Optional[str] = None
    vqa_path: Optional[str] = None
    inception: Optional[str] = None
    inception_path: Optional[str] = None
    fid_reference: Optional[str] = None
    judge: Optional[str] = None
    judge_url: Optional[str] = None
    judge_model: str = "gpt-4o"  # ImgEdit's code default (Benchmark/Basic/basic_bench.py)
    judge_api_key_env: str = "OPENAI_API_KEY"  # name of the variable, never the key itself
    judge_cache: Optional[str] = None
    judge_timeout_s: float = 60.0
    judge_max_retries: int = 4
    # Tuning and extra files; every one has a default that matches the official evaluator:
    judge_backoff_s: float = 2.0  # first retry delay; doubles per retry, capped at 60 s
    detector_classes: Optional[str] = None  # GenEval's object_names.txt (class names by index)
    detector_config: Optional[str] = None  # mmdet only: config file (default: GenEval's lookup)
    detector_min_score: float = 0.1  # below GenEval's lowest threshold (0.3), so harmless
    inception_mode: str = "clean"  # clean-fid mode; "clean" is clean-fid's default (cleanfid/fid.py)
    device: str = "auto"  # "auto" = cuda when visible, else cpu

    @classmethod
    def standins(cls) -> "BackendsConfig":
        """Every kind served by its shapes-world stand-in, chosen by name (tests, the demo)."""
        return cls(**{kind: "standin" for kind in KINDS})


KINDS = ("detector", "color", "vqa", "inception", "judge")
# The evaluator behind each benchmark's published numbers (docs/backends.md): GenEval's
# MMDetection Mask2Former and open_clip ViT-L-14 (djghosh13/geneval evaluation/evaluate_images.py),
# DPG-Bench's mPLUG-large (TencentQQGYLab/ELLA dpg_bench/compute_dpg_bench.py), clean-fid's
# Inception (GaParmar/clean-fid), ImgEdit's OpenAI judge (PKU-YuanGroup/ImgEdit Benchmark/Basic).
OFFICIAL = {"detector": "mmdet", "color": "open_clip", "vqa": "mplug", "inception": "clean_fid", "judge": "openai"}
# Fingerprint fields that say where or how patiently a backend runs, not what it computes.
OPERATIONAL_FIELDS = {"path", "mtime", "cache", "timeout_s", "max_retries", "api_key_env", "note"}

# name -> "module:Class"; classes are imported only when used (no torch/transformers at import).
_M = "lavida_bench.backends"
BACKENDS: dict[str, Registry[type[Backend]]] = {
    "detector": Registry("detector backend", base=Backend, entries={
        "standin": f"{_M}.standins:StandinDetector",
        "mask2former": f"{_M}.detection:Mask2FormerDetector",
        "mmdet": f"{_M}.detection:MMDetDetector",
    }),
    "color": Registry("color backend", base=Backend, entries={
        "standin": f"{_M}.standins:StandinColor",
        "clip": f"{_M}.color:ClipColorClassifier",
        "open_clip": f"{_M}.color:OpenClipColorClassifier",
    }),
    "vqa": Registry("vqa backend", base=Backend, entries={
        "standin": f"{_M}.standins:StandinVQA",
        "blip": f"{_M}.vqa:BlipVQA",
        "mplug": f"{_M}.vqa:MplugVQA",
    }),
    "inception": Registry("inception backend", base=Backend, entries={
        "standin": f"{_M}.standins:StandinInception",
        "clean_fid": f"{_M}.fid:CleanFidInception",
        "torchmetrics": f"{_M}.fid:TorchmetricsInception",
    }),
    "judge": Registry("judge backend", base=Backend, entries={
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


def unset_evaluators(backends: Mapping[str, Any] | None, tasks: Iterable[str]) -> list[str]:
    """Config problems: each evaluator kind a configured task needs but `backends` leaves unset."""
    from lavida_bench.tasks import TASKS

    needs: dict[str, list[str]] = {}
    for task in tasks:
        if task in TASKS:
            for kind in TASKS.get(task).evaluators:
                needs.setdefault(kind, []).append(task)
    return [f"backends.{kind}: not set, and {', '.join(users)} need(s) it; the official choice is "
            f"backends.{kind}={OFFICIAL[kind]} (see docs/backends.md); the shapes-world stand-in is "
            f"used only when named (backends.{kind}=standin)"
            for kind, users in needs.items() if not (backends or {}).get(kind)]


def config_problems(cfg: BackendsConfig) -> list[str]:
    """Every problem of a backends config at once (for `lavida-bench validate`), loading nothing."""
    problems = []
    for kind in KINDS:
        if getattr(cfg, kind) is None:
            continue
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
        self._classes = {kind: backend_class(kind, getattr(cfg, kind)) for kind in KINDS if getattr(cfg, kind)}
        for cls in self._classes.values():  # missing weights fail now, not after generation
            cls.check(cfg)
        _check_fid_reference(cfg)
        self._built: dict[str, Backend] = {}
        self._fingerprints: dict[str, dict[str, Any]] | None = None

    def _get(self, kind: str) -> Any:
        if kind not in self._classes:
            raise ValueError(f"backends.{kind} is not set; the official choice is backends.{kind}={OFFICIAL[kind]}")
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
        """Per kind: name, stand-in flag, weights fingerprint and backend facts (no loading).
        Computed once per `Backends` (the config is fixed): a run asks for it for the manifest,
        for every task's score records and for the score pass, and weight folders and the FID
        reference folder are not re-read each time."""
        if self._fingerprints is None:
            self._fingerprints = self._compute_fingerprints()
        return self._fingerprints

    def _compute_fingerprints(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for kind, cls in self._classes.items():
            entry: dict[str, Any] = {"name": cls.name, "standin": cls.standin, "official": cls.name == OFFICIAL[kind],
                                     "official_choice": OFFICIAL[kind]}
            if cls.standin:
                entry["note"] = STANDIN_NOTE
            if cls.path_key:
                entry["weights"] = path_fingerprint(getattr(self.cfg, cls.path_key))
            entry.update(cls.describe(self.cfg))
            out[kind] = entry
        if self.cfg.fid_reference and "inception" in out:
            out["inception"]["fid_reference"] = path_fingerprint(self.cfg.fid_reference)
        return out

    def evaluator_fingerprint(self, kinds: Iterable[str]) -> str:
        """A short hash of what the given kinds compute (names, weights, modes, judge model and
        endpoint; not where files are or how patiently requests are retried): score records
        carry it, so that a changed backend is noticed and re-scored."""
        fingerprints = self.fingerprints()
        facts = {kind: strip_fields(fingerprints.get(kind)) for kind in sorted(kinds)}
        return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def strip_fields(obj: Any) -> Any:
    """`obj` without OPERATIONAL_FIELDS at any depth."""
    if isinstance(obj, dict):
        return {k: strip_fields(v) for k, v in obj.items() if k not in OPERATIONAL_FIELDS}
    if isinstance(obj, list):
        return [strip_fields(v) for v in obj]
    return obj
