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

    def describe(self) -> dict[str, Any]:
        return self.model.describe()

    def __getattr__(self, name: str) -> Callable[[list[Request]], list[Result]]:
        if name not in ("understand", "ground", "generate", "edit"):
            raise AttributeError(name)
        fn = getattr(self.model, name)

        def call(requests: list[Request]) -> list[Result]:
            seconds, out = timed(lambda: fn(requests), self.device)
            self.seconds += seconds
            self.samples += len(requests)
            return out

        return call


def harness_overhead(model: Model, device: Any, root: Path, samples: int, resolution: int, steps: int,
                     seed: int = 0) -> dict[str, Any]:
    try:
        from lavida_bench.app import execute, score_run
        from lavida_bench.config import build_config
        from lavida_bench.tasks import TASKS
    except ImportError as err:
        return {"available": False, "note": f"harness not importable: {err}"}
    try:
        tasks = {}
        for name, variant in HARNESS_TASKS.items():
            data = TASKS.get(name).make_fixture(root / "data" / name, seed=seed)
            tasks[name] = {"data": str(data), "variants": [variant], "limit": samples}
        raw = {"name": "speed-harness", "output": str(root / "run"), "seed": seed, "batch_size": 1,
               "model": {"resolution": resolution}, "tasks": tasks,
               "variants": {"plain": {"steps": steps}, "steps1": {"steps": 1}},
               # the harness measures time, not scores: the shapes-world stand-ins, named explicitly
               "backends": {"detector": "standin", "color": "standin"}}
        cfg = build_config(raw, "speed harness")
        timed_model = TimedModel(model, device)
        start = time.perf_counter()
        outcome = execute(cfg, model=timed_model, score=False, progress=False)  # type: ignore[arg-type]
        wall = time.perf_counter() - start
        start = time.perf_counter()
        score_run(cfg, progress=False)
        scoring = time.perf_counter() - start
    except Exception as err:  # noqa: BLE001 - tasks/fixtures are owned elsewhere: report, do not fail
        return {"available": False, "note": f"harness run failed: {type(err).__name__}: {err}"}
    n = timed_model.samples
    overhead = wall - timed_model.seconds
    errors = [e for progress in outcome.generation.values() for e in progress.errors]
    return {"available": True, "tasks": HARNESS_TASKS, "samples": n, "error_records": len(errors),
            "first_error": errors[0] if errors else None, "wall_s": wall, "model_s": timed_model.seconds,
            "overhead_s": overhead, "overhead_per_sample_s": overhead / n if n else None,
            "overhead_fraction_of_wall": overhead / wall if wall else None,
            "scoring_s": scoring, "scoring_samples_per_s": n / scoring if scoring else None,
            "note": "overhead includes fixed per-run costs (config, fixture loading, manifest) spread over the samples"}


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
