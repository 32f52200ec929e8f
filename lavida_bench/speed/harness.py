"""Harness overhead and scoring throughput: the costs around the model.

Overhead: a real `lavida_bench.app.execute` run (config validation, fixture loading, manifest,
runner batching, record store with fsynced JSONL lines and PNG files) on small synthetic
fixtures, with the model wrapped so its own time is summed separately; overhead per sample =
(wall time - model time) / samples. It must stay a small fraction of model time at real sizes.

Scoring: evaluator backends (`lavida_bench.backends`) timed on synthetic shape images: detector
and Inception images per second, colour crops and VQA questions per second. Backends that cannot
be imported or built are reported as "not available" with the reason.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lavida_bench.api import Model, Request, Result
from lavida_bench.timing import timed

HARNESS_TASKS = {"refcoco": "steps1", "geneval": "plain"}  # one grounding and one generation task


class TimedModel:
    """Wraps a model: every capability call is timed (device-synchronised) and summed."""

    def __init__(self, model: Model, device: Any):
        self.model, self.device = model, device
        self.name, self.capabilities = model.name, model.capabilities
        self.seconds, self.samples = 0.0, 0
        self.calls: list[tuple[str, list[Request]]] = []  # replayed directly by `direct_seconds`
        self.first_start: float | None = None  # perf_counter at the first call, and after the last
        self.last_end: float | None = None

    def describe(self) -> dict[str, Any]:
        return self.model.describe()

    def direct_seconds(self) -> float:
        """The same calls again, made directly one after another with no harness around them.
        `wall - this` is the overhead even where the harness works beside the model (records
        are written on a thread while the next batch computes): on a CPU with no core to spare
        that work slows the model calls, which `wall - seconds` would count as model time."""
        total = 0.0
        for name, requests in self.calls:
            fn = getattr(self.model, name)
            total += timed(lambda: fn(requests), self.device)[0]  # noqa: B023 - called at once
        return total

    def __getattr__(self, name: str) -> Callable[[list[Request]], list[Result]]:
        if name not in ("understand", "ground", "generate", "edit"):
            raise AttributeError(name)
        fn = getattr(self.model, name)

        def call(requests: list[Request]) -> list[Result]:
            start = time.perf_counter()
            self.first_start = start if self.first_start is None else self.first_start
            seconds, out = timed(lambda: fn(requests), self.device)
            self.seconds += seconds
            self.samples += len(requests)
            self.calls.append((name, requests))
            self.last_end = time.perf_counter()
            return out

        return call


def harness_config(root: Path, samples: int, resolution: int, steps: int, seed: int) -> Any:
    from lavida_bench.config import build_config
    from lavida_bench.tasks import TASKS

    tasks = {}
    for name, variant in HARNESS_TASKS.items():
        data = TASKS.get(name).make_fixture(root / "data" / name, seed=seed)
        tasks[name] = {"data": str(data), "variants": [variant], "limit": samples}
    raw = {"name": "speed-harness", "output": str(root / "run"), "seed": seed, "batch_size": 1,
           "model": {"resolution": resolution}, "tasks": tasks,
           "variants": {"plain": {"steps": steps}, "steps1": {"steps": 1}},
           # the harness measures time, not scores: the shapes-world stand-ins, named explicitly
           "backends": {"detector": "standin", "color": "standin"}}
    return build_config(raw, "speed harness")


def timed_execute(cfg: Any, model: Model, device: Any) -> tuple[TimedModel, float, Any]:
    from lavida_bench.app import execute

    timed_model = TimedModel(model, device)
    start = time.perf_counter()
    outcome = execute(cfg, model=timed_model, score=False, progress=False)  # type: ignore[arg-type]
    return timed_model, time.perf_counter() - start, outcome


def harness_overhead(model: Model, device: Any, root: Path, samples: int, resolution: int, steps: int,
                     seed: int = 0) -> dict[str, Any]:
    """The run's overhead as a first run in this process pays it (one-off imports and warm-up
    included), then `warm`: the same run again into a fresh folder, beside the same model calls
    made directly (a fair baseline even where the harness works beside the model)."""
    try:
        from lavida_bench.app import score_run
        cfg = harness_config(root, samples, resolution, steps, seed)
        timed_model, wall, outcome = timed_execute(cfg, model, device)
        start = time.perf_counter()
        score_run(cfg, progress=False)
        scoring = time.perf_counter() - start
        cfg.output = str((root / "warm").resolve())
        warm_model, warm_wall, _ = timed_execute(cfg, model, device)
        direct = warm_model.direct_seconds()
    except Exception as err:  # noqa: BLE001 - tasks/fixtures are owned elsewhere: report, do not fail
        return {"available": False, "note": f"harness run failed: {type(err).__name__}: {err}"}
    errors = [e for progress in outcome.generation.values() for e in progress.errors]
    warm = {**overhead_split(warm_model, warm_wall), "direct_model_s": direct,
            "overhead_vs_direct_fraction": (warm_wall - direct) / warm_wall if warm_wall else None}
    return {"available": True, "tasks": HARNESS_TASKS, "samples": timed_model.samples, "error_records": len(errors),
            "first_error": errors[0] if errors else None, **overhead_split(timed_model, wall), "warm": warm,
            "scoring_s": scoring, "scoring_samples_per_s": timed_model.samples / scoring if scoring else None,
            "note": "overhead = wall - model time: the fixed per-run costs before the first and after the last "
                    "model call (config, manifest, merging) plus the per-sample costs between calls (records, "
                    "PNGs, sample loading); `between_calls_fraction` is the part that grows with the samples; "
                    "`warm`: the same run again in this process, and (wall - the same model calls made "
                    "directly) / wall"}


def overhead_split(model: TimedModel, wall: float) -> dict[str, Any]:
    """Overhead in total, and split into the fixed per-run part and the part between model calls."""
    n, overhead = model.samples, wall - model.seconds
    out = {"wall_s": wall, "model_s": model.seconds, "overhead_s": overhead,
           "overhead_per_sample_s": overhead / n if n else None,
           "overhead_fraction_of_wall": overhead / wall if wall else None}
    if model.first_start is not None and model.last_end is not None:
        span = model.last_end - model.first_start  # first model call to the end of the last
        out["fixed_s"] = wall - span
        out["between_calls_s"] = span - model.seconds
        out["between_calls_fraction"] = (span - model.seconds) / span if span else None
    return out


def _rate(fn: Callable[[], Any], items: int) -> dict[str, Any]:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return {"available": True, "items": items, "seconds": seconds, "per_s": items / seconds if seconds else None}


def scoring_throughput(backends_cfg: Any, n_images: int = 8, size: int = 256) -> dict[str, Any]:
    """Items per second of each configured evaluator backend on synthetic shape images."""
    try:
        from lavida_bench.backends import Backends
        from lavida_bench.backends.shapes import Shape, draw_shapes
    except ImportError as err:
        return {"available": False, "note": f"backends not available: {err}"}
    images = [draw_shapes((size, size), [Shape("square", "red", (10 + i, 20, 90 + i, 100)),
                                          Shape("circle", "blue", (120, 120 - i, 200, 200 - i))])
              for i in range(n_images)]
    backends = Backends(backends_cfg)
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "detector_images": lambda: _rate(lambda: [backends.detector.detect(im) for im in images], n_images),
        "inception_images": lambda: _rate(lambda: backends.inception.features(images), n_images),
        "color_crops": lambda: _rate(lambda: backends.color.classify(images, ["red", "blue"]), n_images),
        "vqa_questions": lambda: _rate(lambda: [backends.vqa.answer(im, "Is there a red square?") for im in images],
                                       n_images),
    }
    out: dict[str, Any] = {}
    for name, job in jobs.items():
        kind = name.split("_")[0]
        try:
            out[name] = {**job(), "backend": getattr(backends_cfg, kind)}
        except Exception as err:  # noqa: BLE001 - a backend that cannot be built is reported, not fatal
            out[name] = {"available": False, "backend": getattr(backends_cfg, kind),
                         "note": f"not available: {type(err).__name__}: {err}"}
    return out
