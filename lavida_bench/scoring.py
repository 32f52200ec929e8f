"""Scoring stage: stored outputs -> per-sample score records -> metrics with CIs -> metrics.json.

Separate from generation, so a metric can be recomputed (new detector, new judge) without
regenerating anything. A score record carries a hash of the output it scored and the
fingerprint of the evaluator backends that scored it: a record is reused only when both still
match (an output regenerated since, or a backend changed since, is scored again; `force`
re-scores everything). A scorer or judge exception is a scoring error: recorded, counted (the
command exits 1) and retried by the next `score`.

metrics.json (strict JSON, no NaN) is

    {"format": "lavida-bench/metrics/2",
     "trust": {"comparable_with_paper": bool, "reasons": [...], "tasks": {task: {...}}},
     "tasks": {task: {variant: {"metrics": {name: {value, ci_low, ci_high, n, direction, scale,
                                                   aggregation, headline, paper_factor, min_n,
                                                   tolerance, from, [reason]}},
                                "counts": {...}}}}}

where every metric carries the facts its task declared (lavida_bench/api.py `MetricSpec`) and a null
value carries a `reason`. The manifest gets one entry per score pass naming the backends used.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from collections.abc import Mapping
from typing import Any

from tqdm import tqdm

from lavida_bench.api import Sample, StoreError, Variant
from lavida_bench.safety import redact
from lavida_bench.store import JsonlWriter, RunStore, read_json, write_json
from lavida_bench.tasks.base import ScoreContext, Task

METRICS_FILE = "metrics.json"
METRICS_FORMAT = "lavida-bench/metrics/2"


def output_hash(record: dict[str, Any]) -> str:
    body = json.dumps({"output": record["output"], "seed": record.get("seed")}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def evaluator_fingerprint(task: Task, ctx: ScoreContext) -> str:
    """Which evaluators score this task, as a short hash ("none" for tasks that need none)."""
    if not task.evaluators or ctx.backends is None:
        return "none"
    return ctx.backends.evaluator_fingerprint(task.evaluators)


def score_task_variant(task: Task, variant: str, samples: list[Sample], store: RunStore,
                       ctx: ScoreContext, progress: bool = True, force: bool = False) -> dict[str, Any]:
    by_id = {s.id: s for s in samples}
    store.repair(task.name, variant)  # a kill during scoring may have torn the last score line
    outputs = store.outputs(task.name, variant, by_id)  # each ok record checked against its sample
    previous = store.scores(task.name, variant)
    backend = evaluator_fingerprint(task, ctx)
    todo = [sid for sid in sorted(outputs) if sid in by_id and outputs[sid].get("status") == "ok"
            and (force or not is_current(previous.get(sid), outputs[sid], backend))]
    with JsonlWriter(store.stage_path(task.name, variant, "scores")) as writer:
        for sid in tqdm(todo, desc=f"score {task.name}/{variant}", file=sys.stderr, disable=not (progress and todo)):
            rec = outputs[sid]
            base = {"id": sid, "output_sha": output_hash(rec), "backend": backend}
            try:
                scores = task.score(by_id[sid], {**rec["output"], "trace": rec.get("trace", {})}, ctx)
                entry = {**base, "status": "ok", "scores": scores}
            except StoreError:
                raise
            except Exception as err:  # a scorer/judge failure: counted, retried next time, never fatal
                entry = {**base, "status": "error", "error": redact(f"{type(err).__name__}: {err}")}
            writer.write(entry)
            previous[sid] = entry
    return summarize(task, variant, samples, outputs, previous)


def is_current(score: dict[str, Any] | None, output: dict[str, Any], backend: str) -> bool:
    """A score record that may be reused: ok, of this very output, by these evaluators."""
    return (score is not None and score.get("status") == "ok" and score.get("output_sha") == output_hash(output)
            and score.get("backend") == backend)


def summarize(task: Task, variant: str, samples: list[Sample], outputs: dict[str, dict[str, Any]],
              scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ids = [s.id for s in samples]
    ok_scores = [scores[i]["scores"] for i in ids if i in scores and scores[i].get("status") == "ok"
                 and outputs.get(i, {}).get("status") == "ok"]
    metrics = {name: m.to_json(task.spec(name), name) for name, m in task.aggregate(ok_scores).items()} \
        if ok_scores else {}
    counts = {
        "samples": len(ids),
        "generated": sum(1 for i in ids if outputs.get(i, {}).get("status") == "ok"),
        "generation_errors": sum(1 for i in ids if outputs.get(i, {}).get("status") == "error"),
        "missing": sum(1 for i in ids if i not in outputs),
        "scored": len(ok_scores),
        "scoring_errors": sum(1 for i in ids if scores.get(i, {}).get("status") == "error"
                              and outputs.get(i, {}).get("status") == "ok"),
    }
    return {"metrics": metrics, "counts": counts}


def run_scoring(tasks: dict[str, Task], grid: list[tuple[str, Variant]], samples: dict[str, list[Sample]],
                store: RunStore, ctx: ScoreContext, progress: bool = True, force: bool = False) -> dict[str, Any]:
    """Score every task/variant, record the pass in the manifest and write RUN/metrics.json
    (keeping entries of task/variants not in this grid); returns the metrics.json document."""
    from lavida_bench.trust import trust_facts

    path = store.root / METRICS_FILE
    results = earlier_results(path)
    for task_name, variant in grid:
        summary = score_task_variant(tasks[task_name], variant.name, samples[task_name], store, ctx, progress, force)
        results.setdefault(task_name, {})[variant.name] = summary
    manifest = record_score_pass(store, ctx, force)
    notes = {name: {"evaluators": list(t.evaluators), "deviations": t.paper_deviations(samples[name])}
             for name, t in tasks.items()}
    doc = {"format": METRICS_FORMAT, "trust": trust_facts(manifest, results, notes), "tasks": results}
    json.dumps(doc, allow_nan=False)  # strict JSON or a loud failure, never a file with NaN
    write_json(path, doc)
    return doc


def earlier_results(path: Any) -> dict[str, Any]:
    """The task entries of an earlier metrics.json in this format (an older format is rebuilt)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data.get("tasks", {}) if isinstance(data, dict) and data.get("format") == METRICS_FORMAT else {}


def record_score_pass(store: RunStore, ctx: ScoreContext, force: bool) -> dict[str, Any]:
    """Append this pass (time, command, evaluator fingerprints) to the manifest's `scoring` list
    and make its `backends` the ones that produced the current scores; returns the manifest."""
    path = store.root / "manifest.json"
    manifest = read_json(path) if path.exists() else {}
    backends = ctx.backends.fingerprints() if ctx.backends is not None else {}
    manifest.setdefault("scoring", []).append({
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv, "force": force, "backends": backends})
    manifest["backends"] = backends
    if path.exists():
        write_json(path, manifest)
    return manifest


def error_count(counts: Mapping[str, Any]) -> int:
    """Generation errors, scoring errors and missing samples of one task/variant's `counts`."""
    return sum(int(counts.get(k, 0)) for k in ("generation_errors", "scoring_errors", "missing"))


def total_errors(results: dict[str, Any]) -> int:
    """`error_count` over a metrics.json document."""
    tasks = results.get("tasks", results) if results.get("format") == METRICS_FORMAT else results
    return sum(error_count(v["counts"]) for variants in tasks.values() for v in variants.values())
