"""One run, start to finish: check, load data, build the model, generate, merge, score.

The order matters: the config, the output folder, every task's records, the evaluator backends
and the settings of an existing run folder are all checked before any model time is spent, and
the model is loaded only when some sample is still to be generated. The manifest is written (or
checked against the folder's) before generating.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lavida_bench.api import ConfigError, DataError, Model, Sample, StoreError
from lavida_bench.backends import Backends, config_problems
from lavida_bench.config import RunConfig, to_dict
from lavida_bench.dist import World, barrier, init_world
from lavida_bench.fingerprint import path_fingerprint
from lavida_bench.manifest import build_manifest, check_resume, write_or_check_manifest
from lavida_bench.models import build_model, check_model_paths, resolve_device
from lavida_bench.runlog import is_log_file, run_log
from lavida_bench.runner import Progress, load_samples, run_generation, task_variants
from lavida_bench.scoring import run_scoring, total_errors
from lavida_bench.store import RunStore
from lavida_bench.tasks import TASKS, Task
from lavida_bench.tasks.base import ScoreContext

log = logging.getLogger("lavida_bench.run")


@dataclass
class Outcome:
    output: Path
    generation: dict[tuple[str, str], Progress]
    results: dict[str, Any]  # metrics.json content (rank 0 only)
    errors: int
    is_main: bool = True  # rank 0 (the process that prints and reports)


def build_tasks(cfg: RunConfig) -> dict[str, Task]:
    return {name: TASKS.get(name)(tcfg.data, tcfg.options) for name, tcfg in cfg.tasks.items()}


def validate(cfg: RunConfig) -> list[str]:
    """Every problem with the paths and names a config refers to, without running anything:
    each task is built and its data index opened (every record read and checked)."""
    problems = check_model_paths(cfg.model)
    for name, tcfg in cfg.tasks.items():
        if tcfg.data is None:
            problems.append(f"tasks.{name}.data: no data folder given")
            continue
        if not Path(tcfg.data).exists():
            problems.append(f"tasks.{name}.data: {tcfg.data} does not exist")
            continue
        try:
            task = TASKS.get(name)(tcfg.data, tcfg.options)
            load_samples(cfg, {name: task})
        except Exception as err:  # validate reports every problem instead of stopping at one
            problems.append(f"tasks.{name}: {err}" if isinstance(err, DataError)
                            else f"tasks.{name}: cannot build the task: {type(err).__name__}: {err}")
    problems += config_problems(cfg.backends)
    return problems


def check_output_folder(root: Path) -> None:
    """Refuse to write a run into a folder that holds something else (the demo's assets, a
    data folder): only a new or empty folder, or a run folder (it has a manifest), is used."""
    if root.exists() and not root.is_dir():
        raise StoreError(f"{root}: --output exists and is not a folder")
    if root.is_dir() and not (root / "manifest.json").is_file() and any(not is_log_file(p) for p in root.iterdir()):
        raise StoreError(f"{root}: --output is a non-empty folder that is not a run folder (no manifest.json); "
                         "choose a new or empty folder")


def execute(cfg: RunConfig, *, model: Model | None = None, score: bool = True,
            progress: bool = True) -> Outcome:
    if not cfg.tasks:
        raise ConfigError(["tasks: the config names no task; select some with --tasks or tasks.<name>.data=..."])
    world = init_world()
    store = RunStore(cfg.output)
    check_output_folder(store.root)
    tasks = build_tasks(cfg)
    samples = load_samples(cfg, tasks)
    problems = config_problems(cfg.backends)  # missing evaluator weights: refused before the model loads
    if problems:
        raise ConfigError(problems)
    backends = Backends(cfg.backends, cache_dir=store.root)  # judge cache lives with the run
    manifest = manifest_for(cfg, tasks, samples, backends, world)  # fingerprints data and weights once
    check_resume(store.root / "manifest.json", manifest, with_model=False)
    finished = finished_work(cfg, tasks, samples, store)  # the one read of the existing records
    pending = pending_work(samples, finished)
    generation: dict[tuple[str, str], Progress] = {}
    with run_log(store.root, world):
        log.info("run %s -> %s: %d task x variant(s), %d sample(s) to generate",
                 cfg.name, store.root, len(task_variants(cfg, tasks)), pending)
        if pending:
            model = model or timed("model loaded", lambda: build_model(cfg.model))
            write_manifest({**manifest, "model": model.describe()}, store, world)
            generation = run_generation(cfg, model, tasks, samples, store, world, finished, progress)
        results: dict[str, Any] = {}
        if world.is_main and score:
            ctx = ScoreContext(run_dir=store.root, backends=backends, seed=cfg.seed)
            results = timed("scored", lambda: run_scoring(tasks, task_variants(cfg, tasks), samples, store, ctx, progress))
        barrier(world)
        errors = total_errors(results) if results else sum(len(p.errors) for p in generation.values())
        log.info("finished with %d error(s)", errors)
    return Outcome(store.root, generation, results, errors, world.is_main)


def timed(what: str, fn: Any) -> Any:
    start = time.perf_counter()
    out = fn()
    log.info("%s in %.1f s", what, time.perf_counter() - start)
    return out


def finished_work(cfg: RunConfig, tasks: dict[str, Task], samples: dict[str, list[Sample]],
                  store: RunStore) -> dict[tuple[str, str], set[str]]:
    """(task, variant) -> ids already finished in the run folder. Read once, before the model is
    built: the pending count and the generation stage both use this result, so a resume does not
    read (and check) every record file twice."""
    return {(name, variant.name): store.finished_ids(name, variant.name, {s.id: s for s in samples[name]})
            for name, variant in task_variants(cfg, tasks)}


def pending_work(samples: dict[str, list[Sample]], finished: dict[tuple[str, str], set[str]]) -> int:
    """Samples still without an ok output over the task x variant grid (0: no model needed)."""
    return sum(len({s.id for s in samples[name]} - done) for (name, _), done in finished.items())


def score_run(cfg: RunConfig, progress: bool = True, force: bool = False) -> dict[str, Any]:
    """Re-score an existing run folder (no generation): records scored by other evaluators than
    the configured ones (or every record, with `force`) are scored again."""
    store = RunStore(cfg.output)
    tasks = build_tasks(cfg)
    samples = load_samples(cfg, tasks)
    ctx = ScoreContext(run_dir=store.root, backends=Backends(cfg.backends, cache_dir=store.root), seed=cfg.seed)
    return run_scoring(tasks, task_variants(cfg, tasks), samples, store, ctx, progress, force)


def manifest_for(cfg: RunConfig, tasks: dict[str, Task], samples: dict[str, list[Sample]],
                 backends: Backends, world: World) -> dict[str, Any]:
    """The run's manifest before the model is built (its `model` entry is filled in once it is)."""
    task_info = [{**t.describe(), "samples": len(samples[n]), "data": path_fingerprint(t.data_dir)}
                 for n, t in tasks.items()]
    return build_manifest(to_dict(cfg), model={}, tasks=task_info,
                          backends=backends.fingerprints(), device=resolve_device(cfg.model.device),
                          world_size=world.size)


def write_manifest(manifest: dict[str, Any], store: RunStore, world: World) -> None:
    """Rank 0 writes (or checks, on resume) the manifest; the run folder exists (`run_log` made it)."""
    if not world.is_main:
        barrier(world)
        return
    write_or_check_manifest(store.root / "manifest.json", manifest)
    barrier(world)


__all__ = ["ConfigError", "Outcome", "execute", "score_run", "validate", "build_tasks"]
