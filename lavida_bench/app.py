"""One run, start to finish: validate, load data, build the model, generate, merge, score.

The order matters: every task's records are loaded (and refused if broken) before any model
time is spent; the manifest is written (or checked against the folder's) before generating.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lavida_bench.backends import Backends, config_problems
from lavida_bench.config import ConfigError, RunConfig, to_dict
from lavida_bench.dist import World, barrier, init_world
from lavida_bench.fingerprint import path_fingerprint
from lavida_bench.manifest import build_manifest, write_or_check_manifest
from lavida_bench.models import build_model, check_model_paths, resolve_device
from lavida_bench.protocol import Model
from lavida_bench.runner import Progress, load_samples, run_generation, task_variants
from lavida_bench.scoring import run_scoring, total_errors
from lavida_bench.store import RunStore, StoreError
from lavida_bench.tasks import TASKS, Task
from lavida_bench.tasks.base import Sample, ScoreContext


@dataclass
class Outcome:
    output: Path
    generation: dict[tuple[str, str], Progress]
    results: dict[str, Any]  # metrics.json content (rank 0 only)
    errors: int


def build_tasks(cfg: RunConfig) -> dict[str, Task]:
    return {name: TASKS.get(name)(tcfg.data, tcfg.options) for name, tcfg in cfg.tasks.items()}


def validate(cfg: RunConfig) -> list[str]:
    """Every problem with the paths and names a config refers to, without running anything."""
    problems = check_model_paths(cfg.model)
    for name, tcfg in cfg.tasks.items():
        if tcfg.data is None:
            problems.append(f"tasks.{name}.data: no data folder given")
        elif not Path(tcfg.data).exists():
            problems.append(f"tasks.{name}.data: {tcfg.data} does not exist")
        try:
            TASKS.get(name)(tcfg.data, tcfg.options)
        except Exception as err:  # validate reports every problem instead of stopping at one
            problems.append(f"tasks.{name}: cannot build the task: {type(err).__name__}: {err}")
    problems += config_problems(cfg.backends)
    return problems


def execute(cfg: RunConfig, *, model: Model | None = None, score: bool = True,
            progress: bool = True) -> Outcome:
    world = init_world()
    store = RunStore(cfg.output)
    tasks = build_tasks(cfg)
    samples = load_samples(cfg, tasks)
    model = model or build_model(cfg.model)
    backends = Backends(cfg.backends, cache_dir=store.root)  # judge cache lives with the run
    write_manifest(cfg, model, tasks, samples, backends, store, world)
    generation = run_generation(cfg, model, tasks, samples, store, world, progress)
    results: dict[str, Any] = {}
    if world.is_main and score:
        ctx = ScoreContext(run_dir=store.root, backends=backends, seed=cfg.seed)
        results = run_scoring(tasks, task_variants(cfg, tasks), samples, store, ctx, progress)
    barrier(world)
    errors = total_errors(results) if results else sum(len(p.errors) for p in generation.values())
    return Outcome(store.root, generation, results, errors)


def score_run(cfg: RunConfig, progress: bool = True) -> dict[str, Any]:
    """Re-score an existing run folder (no generation): e.g. after changing a backend."""
    store = RunStore(cfg.output)
    tasks = build_tasks(cfg)
    samples = load_samples(cfg, tasks)
    ctx = ScoreContext(run_dir=store.root, backends=Backends(cfg.backends, cache_dir=store.root), seed=cfg.seed)
    return run_scoring(tasks, task_variants(cfg, tasks), samples, store, ctx, progress)


def write_manifest(cfg: RunConfig, model: Model, tasks: dict[str, Task], samples: dict[str, list[Sample]],
                   backends: Backends, store: RunStore, world: World) -> None:
    if not world.is_main:
        barrier(world)
        return
    task_info = [{**t.describe(), "samples": len(samples[n]), "data": path_fingerprint(t.data_dir)}
                 for n, t in tasks.items()]
    manifest = build_manifest(to_dict(cfg), model=model.describe(), tasks=task_info,
                              backends=backends.fingerprints(), device=resolve_device(cfg.model.device),
                              world_size=world.size)
    try:
        store.root.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # before any model time: an unusable output folder is bad input
        raise StoreError(f"{store.root}: cannot create the run folder ({err.strerror or err})") from err
    write_or_check_manifest(store.root / "manifest.json", manifest)
    barrier(world)


__all__ = ["ConfigError", "Outcome", "execute", "score_run", "validate", "build_tasks"]
