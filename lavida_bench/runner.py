"""Generation stage: task x variant grid -> one durable output record per sample.

Resumable and world-size independent: finished ids are read from every record file of the
task/variant (merged file and all rank shards), the remaining ids are sorted and dealt out
round-robin to ranks, and each rank appends to its own shard. Seeds come from sample ids, so a
sample's output is the same whichever rank, batch or resume produced it.
"""
from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tqdm import tqdm

from lavida_bench.api import DataError, Model, Request, Result, Sample, StoreError, Variant, call_capability
from lavida_bench.config import RunConfig, sample_count
from lavida_bench.dist import World, barrier, shard
from lavida_bench.safety import redact
from lavida_bench.seeds import sample_seed
from lavida_bench.store import JsonlWriter, RunStore, iter_batches, sample_digest
from lavida_bench.tasks.base import Task

log = logging.getLogger("lavida_bench.run")
PendingRecord = Callable[[], dict[str, Any]]  # builds one record, saving its images, when called


@dataclass
class Progress:
    """Counts for one task/variant on this rank."""

    total: int = 0
    done_before: int = 0
    generated: int = 0
    errors: list[str] = field(default_factory=list)


def task_variants(cfg: RunConfig, tasks: dict[str, Task]) -> list[tuple[str, Variant]]:
    """The task x variant grid of a run, in config order."""
    grid = []
    for name, task in tasks.items():
        names = cfg.tasks[name].variants or list(task.variants)
        grid += [(name, Variant(v, cfg.variants[v].to_options())) for v in names]
    return grid


def load_samples(cfg: RunConfig, tasks: dict[str, Task]) -> dict[str, list[Sample]]:
    """Load every task's records up front, so a broken dataset is refused before model time."""
    out = {}
    for name, task in tasks.items():
        samples = task.load()
        if not samples:
            raise DataError(f"task {name}: no records found in {task.data_dir}")
        seen: set[str] = set()
        for s in samples:
            if s.id in seen:
                raise DataError(f"task {name}: duplicate sample id {s.id!r} in {task.data_dir}")
            seen.add(s.id)
        out[name] = samples[:limit_for(cfg, name, len(samples))]
    return out


def limit_for(cfg: RunConfig, task: str, total: int) -> int:
    """Samples of `task` a run takes: the run-wide `limit` and the task's own, whichever is smaller."""
    return min(sample_count(cfg.limit, total), sample_count(cfg.tasks[task].limit, total))


def run_generation(cfg: RunConfig, model: Model, tasks: dict[str, Task], samples: dict[str, list[Sample]],
                   store: RunStore, world: World, finished: Mapping[tuple[str, str], set[str]],
                   progress: bool = True) -> dict[tuple[str, str], Progress]:
    """Generate every task x variant's unfinished samples. `finished`: (task, variant) -> ids
    already done, as `app.finished_work` read them once before the model was built; every rank
    has read them before any rank passes the first barrier below and appends a record (a fast
    rank appending while a slow one still read would deal different todo lists, and samples
    would be skipped or generated twice: tests/reliability/test_ranks.py)."""
    summary = {}
    for task_name, variant in task_variants(cfg, tasks):
        if world.is_main:
            store.repair(task_name, variant.name)
        barrier(world)
        start = time.perf_counter()
        stats = run_task_variant(cfg, model, tasks[task_name], samples[task_name], variant, store, world, progress,
                                 finished[(task_name, variant.name)])
        summary[(task_name, variant.name)] = stats
        log.info("%s/%s: %d done before, %d generated (%d errors) in %.1f s", task_name, variant.name,
                 stats.done_before, stats.generated, len(stats.errors), time.perf_counter() - start)
        barrier(world)
        if world.is_main:
            store.merge(task_name, variant.name)
        barrier(world)
    return summary


def run_task_variant(cfg: RunConfig, model: Model, task: Task, samples: list[Sample], variant: Variant,
                     store: RunStore, world: World, progress: bool, done: set[str]) -> Progress:
    """Generate this rank's share of the samples not in `done` (the finished ids, which every
    rank read before `run_generation`'s first barrier, so all ranks deal from the same set)."""
    todo = sorted((s for s in samples if s.id not in done), key=lambda s: s.id)
    mine = shard(todo, world)
    stats = Progress(total=len(samples), done_before=len(done & {s.id for s in samples}))
    # One bar per task x variant with work to do, on rank 0 only (it counts its own share).
    bar = tqdm(total=len(mine), desc=f"{task.name}/{variant.name}", unit="sample", file=sys.stderr,
               disable=not (progress and world.is_main and todo), dynamic_ncols=True)
    with JsonlWriter(store.part_path(task.name, variant.name, world.rank)) as writer, WriteBehind(writer) as behind:
        for batch in iter_batches(mine, cfg.batch_size):
            tally(stats, behind.swap(generate_batch(cfg, model, task, batch, variant, store)), bar)
        tally(stats, behind.swap([]), bar)
    bar.close()
    return stats


def tally(stats: Progress, records: list[dict[str, Any]], bar: Any) -> None:
    """Count written records (and log the failed ones) on the main thread."""
    for record in records:
        stats.generated += 1
        if record["status"] != "ok":
            stats.errors.append(f"{record['id']}: {record['error']}")
            log.warning("%s/%s %s: %s error: %s", record["task"], record["variant"], record["id"],
                        record["stage"], record["error"])
        bar.update(1)


class WriteBehind:
    """Builds a batch's records (PNG encoding, image files) and appends them on one worker thread
    while the model computes the next batch, so file I/O leaves the model's critical path.

    Nothing about durability changes: records are written in order, each after its images and
    fsynced (`JsonlWriter`). At most one batch is behind; a kill loses at most that batch, which
    was never written and is generated again on resume. A write error (disk full) is raised by
    the next `swap`, after which nothing more is written."""

    def __init__(self, writer: JsonlWriter):
        self.writer = writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="records")
        self._behind: Future[list[dict[str, Any]]] | None = None

    def swap(self, pending: list[PendingRecord]) -> list[dict[str, Any]]:
        """Wait for the batch behind (raising its error), start writing `pending`; returns the
        records that are now written."""
        behind, self._behind = self._behind, None
        written = behind.result() if behind is not None else []
        if pending:
            self._behind = self._pool.submit(self._write, pending)
        return written

    def _write(self, pending: list[PendingRecord]) -> list[dict[str, Any]]:
        records = []
        for make in pending:
            records.append(make())
            self.writer.write(records[-1])
        return records

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        """Let the batch behind finish (its records are valid results) before the file closes; on
        an error in flight that error is the one raised."""
        self._pool.shutdown(wait=True)


def generate_batch(cfg: RunConfig, model: Model, task: Task, batch: list[Sample], variant: Variant,
                   store: RunStore) -> list[PendingRecord]:
    """The records of one batch, each to be built (images saved) when called; a failing batch is
    retried sample by sample so one bad sample costs only its own record."""
    records: dict[str, PendingRecord] = {}
    requests: list[tuple[Sample, Request]] = []
    for sample in batch:
        try:
            req = task.request(sample, variant)
            req.seed = sample_seed(cfg.seed, task.name, sample.id)
            requests.append((sample, req))
        except StoreError:
            raise
        except Exception as err:  # bad data for this sample: record it and go on
            records[sample.id] = partial(error_record, task, variant, sample, "request", err)
    groups = [requests] if len(requests) > 1 else [[r] for r in requests]
    while groups:
        group = groups.pop(0)
        try:
            start = time.perf_counter()
            results = call_capability(model, [r for _, r in group])
            per_sample = (time.perf_counter() - start) / len(group)
        except StoreError:
            raise
        except Exception as err:
            if len(group) > 1:
                groups = [[r] for r in group] + groups
                continue
            sample, _ = group[0]
            records[sample.id] = partial(error_record, task, variant, sample, "model", err)
            continue
        for (sample, req), result in zip(group, results):
            records[sample.id] = partial(ok_record, task, variant, sample, req, result, store, per_sample)
    return [records[s.id] for s in batch]


def ok_record(task: Task, variant: Variant, sample: Sample, req: Request, result: Result,
              store: RunStore, runner_s: float) -> dict[str, Any]:
    output: dict[str, Any] = {"text": result.text, "boxes": result.boxes, "image": None, "attempts": []}
    digests = {}  # image -> sha256 of its bytes: a regenerated image that differs is scored again
    if result.image is not None:
        output["image"] = store.image_relpath(task.name, variant.name, sample.id)
        digests[output["image"]] = store.save_image(result.image, output["image"])
    for k, attempt in enumerate(result.attempts):
        rel = store.image_relpath(task.name, variant.name, sample.id, attempt=k)
        digests[rel] = store.save_image(attempt, rel)
        output["attempts"].append(rel)
    if digests:
        output["sha256"] = digests
    trace = result.trace.to_json()
    trace["runner_s"] = runner_s
    return {"id": sample.id, "task": task.name, "variant": variant.name, "seed": req.seed,
            "status": "ok", "prompt_sha256": hashlib.sha256(req.prompt.encode()).hexdigest()[:16],
            "sample_sha256": sample_digest(sample),
            "prompt": req.prompt, "target": task.target(sample), "output": output, "trace": trace}


def error_record(task: Task, variant: Variant, sample: Sample, stage: str, err: Exception) -> dict[str, Any]:
    return {"id": sample.id, "task": task.name, "variant": variant.name, "status": "error",
            "stage": stage, "error": redact(f"{type(err).__name__}: {err}")}
