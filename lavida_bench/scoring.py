"""Scoring stage: stored outputs -> per-sample score records -> metrics with CIs.

Separate from generation, so a metric can be recomputed (new detector, new judge) without
regenerating anything. Score records carry a hash of the output they scored: an output that
was regenerated since is scored again; everything else is resumed, not recomputed.
"""
from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from tqdm import tqdm

from lavida_bench.safety import redact
from lavida_bench.store import JsonlWriter, RunStore, StoreError, write_json
from lavida_bench.tasks.base import Sample, ScoreContext, Task, Variant

METRICS_FILE = "metrics.json"


def output_hash(record: dict[str, Any]) -> str:
    body = json.dumps({"output": record["output"], "seed": record.get("seed")}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def score_task_variant(task: Task, variant: str, samples: list[Sample], store: RunStore,
                       ctx: ScoreContext, progress: bool = True) -> dict[str, Any]:
    by_id = {s.id: s for s in samples}
    store.repair(task.name, variant)  # a kill during scoring may have torn the last score line
    outputs = store.outputs(task.name, variant)
    previous = store.scores(task.name, variant)
    todo = [sid for sid in sorted(outputs) if sid in by_id and outputs[sid].get("status") == "ok"
            and not is_current(previous.get(sid), outputs[sid])]
    with JsonlWriter(store.stage_path(task.name, variant, "scores")) as writer:
        for sid in tqdm(todo, desc=f"score {task.name}/{variant}", file=sys.stderr, disable=not progress):
            rec = outputs[sid]
            base = {"id": sid, "output_sha": output_hash(rec)}
            try:
                scores = task.score(by_id[sid], {**rec["output"], "trace": rec.get("trace", {})}, ctx)
                entry = {**base, "status": "ok", "scores": scores}
            except StoreError:
                raise
            except Exception as err:  # a scorer failure is recorded, never fatal for the run
                entry = {**base, "status": "error", "error": redact(f"{type(err).__name__}: {err}")}
            writer.write(entry)
            previous[sid] = entry
    return summarize(task, variant, samples, outputs, previous)


def is_current(score: dict[str, Any] | None, output: dict[str, Any]) -> bool:
    return score is not None and score.get("status") == "ok" and score.get("output_sha") == output_hash(output)


def summarize(task: Task, variant: str, samples: list[Sample], outputs: dict[str, dict[str, Any]],
              scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ids = [s.id for s in samples]
    ok_scores = [scores[i]["scores"] for i in ids if i in scores and scores[i].get("status") == "ok"
                 and outputs.get(i, {}).get("status") == "ok"]
    metrics = {name: m.to_json() for name, m in task.aggregate(ok_scores).items()} if ok_scores else {}
    counts = {
        "samples": len(ids),
        "generated": sum(1 for i in ids if outputs.get(i, {}).get("status") == "ok"),
        "generation_errors": sum(1 for i in ids if outputs.get(i, {}).get("status") == "error"),
        "missing": sum(1 for i in ids if i not in outputs),
        "scored": len(ok_scores),
        "scoring_errors": sum(1 for i in ids if scores.get(i, {}).get("status") == "error"),
    }
    return {"metrics": metrics, "counts": counts}


def run_scoring(tasks: dict[str, Task], grid: list[tuple[str, Variant]], samples: dict[str, list[Sample]],
                store: RunStore, ctx: ScoreContext, progress: bool = True) -> dict[str, Any]:
    """Score every task/variant and write RUN/metrics.json (merging with earlier entries)."""
    path = store.root / METRICS_FILE
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for task_name, variant in grid:
        summary = score_task_variant(tasks[task_name], variant.name, samples[task_name], store, ctx, progress)
        results.setdefault(task_name, {})[variant.name] = summary
    write_json(path, results)
    return results


def total_errors(results: dict[str, Any]) -> int:
    return sum(v["counts"]["generation_errors"] + v["counts"]["scoring_errors"] + v["counts"]["missing"]
               for variants in results.values() for v in variants.values())
