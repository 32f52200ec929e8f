"""Run trust facts: may this run's numbers stand beside the paper's, and if not, why not.

Computed in one place, at the end of every score pass, from the manifest (model, evaluators that
scored, config) and the per-task counts, and stored in metrics.json under `trust`:

    {"comparable_with_paper": bool, "reasons": [...], "world": None | "synthetic world",
     "tasks": {task: {"comparable_with_paper": bool, "reasons": [...], "evaluators": [kinds]}}}

A run is comparable only if every task is. A task is not when it was scored by a stand-in or by
an evaluator other than the one behind the published numbers, ran on a model that is not the
released size (tiny, random weights, the constant baseline, a micro model trained on the
synthetic world: its checkpoint's provenance.json says so), used `limit`, departs from the
paper's protocol (missing splits, another reference set...), or has generation errors, scoring
errors (judge failures included) or missing samples. The console (end of `run`/`score`), the
report, compare and the leaderboard all show these facts; none recomputes them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

# Geometry fields that tell the released model from a smaller one (model/config.py `official`).
SIZE_FIELDS = ("d_model", "n_layers", "mlp_hidden_size", "d_model_gen", "mlp_hidden_size_gen", "dual_tower_layers")


def model_reasons(model: Mapping[str, Any]) -> list[str]:
    """Why the model behind a run is not the released Lavida-O (empty when it is)."""
    from lavida_bench.model.config import LavidaConfig

    if model.get("name") == "constant" or "baseline" in str(model.get("kind", "")):
        return ["constant reference baseline, not a model"]
    provenance = model.get("provenance") or {}
    reasons = [world_reason(provenance["world"])] if provenance.get("world") else []
    if provenance.get("weights") == "random":
        reasons.append("model with random weights")
    if model.get("prefix_lm") is False:  # the release's evaluations decode with prefix_lm=True (eval/run.sh)
        reasons.append("text decoded without the prefix cache (prefix_lm=False; the paper's runs use True)")
    config = model.get("config")
    official = LavidaConfig.official().summary()
    if not isinstance(config, Mapping):
        reasons.append("model size unknown (no config in the manifest)")
    elif any(config.get(k) != official[k] for k in SIZE_FIELDS):
        reasons.append("not the released model size (tiny or custom configuration)")
    return reasons


def evaluator_reasons(kinds: list[str], backends: Mapping[str, Any]) -> list[str]:
    out = []
    for kind in kinds:
        entry = backends.get(kind) or {}
        if entry.get("standin"):
            out.append(f"stand-in {kind} (shapes world only)")
        elif not entry.get("official"):
            out.append(f"{kind} {entry.get('name', 'unknown')!r} is not the official evaluator "
                       f"({entry.get('official_choice', '?')})")
    return out


def count_reasons(variants: Mapping[str, Any]) -> list[str]:
    """Errors and missing samples over a task's variants, one line per kind of problem."""
    totals = {"generation_errors": 0, "scoring_errors": 0, "missing": 0, "unscored": 0}
    for entry in variants.values():
        c = entry.get("counts", {})
        for key in ("generation_errors", "scoring_errors", "missing"):
            totals[key] += int(c.get(key, 0))
        totals["unscored"] += max(0, int(c.get("samples", 0)) - int(c.get("scored", 0)))
    words = {"generation_errors": "generation error(s)", "scoring_errors": "scoring error(s) (judge or "
             "evaluator failures)", "missing": "missing sample(s)", "unscored": "sample(s) without a score"}
    return [f"{n} {words[k]}" for k, n in totals.items() if n]


def task_reasons(task: str, variants: Mapping[str, Any], manifest: Mapping[str, Any],
                 note: Mapping[str, Any]) -> list[str]:
    config = manifest.get("config") or {}
    limit = (config.get("tasks") or {}).get(task, {}) or {}
    reasons = evaluator_reasons(list(note.get("evaluators", [])), manifest.get("backends") or {})
    if limit.get("limit") is not None:
        reasons.append(f"limit={limit['limit']} (a subset of the benchmark)")
    if config.get("limit") is not None:  # the run-wide --limit
        reasons.append(f"--limit {config['limit']} (a subset of the benchmark)")
    reasons += list(note.get("deviations", []))
    return reasons + count_reasons(variants)


def trust_facts(manifest: Mapping[str, Any], results: Mapping[str, Any],
                notes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The trust facts of a scored run. `notes[task]`: {"evaluators": kinds, "deviations": [...]}
    (from the task objects); `results`: metrics.json's task entries."""
    model = model_reasons(manifest.get("model") or {})
    tasks = {}
    for task, variants in results.items():
        reasons = model + task_reasons(task, variants, manifest, notes.get(task, {}))
        tasks[task] = {"comparable_with_paper": not reasons, "reasons": reasons,
                       "evaluators": list(notes.get(task, {}).get("evaluators", []))}
    every = list(dict.fromkeys([*model] + [f"{t}: {r}" for t, v in tasks.items() for r in v["reasons"]
                                            if r not in model]))
    return {"comparable_with_paper": bool(tasks) and not every, "reasons": every or ([] if tasks else ["nothing scored"]),
            "world": ((manifest.get("model") or {}).get("provenance") or {}).get("world"), "tasks": tasks}


def read_trust(run_dir: str | Path) -> dict[str, Any] | None:
    """The trust facts stored in a run's metrics.json (None when it has none)."""
    path = Path(run_dir) / "metrics.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data.get("trust") if isinstance(data, dict) else None


def world_reason(world: str) -> str:
    return f"{world}, micro model: comparable with nothing published"


def headline(trust: Mapping[str, Any] | None) -> str:
    """What a not-comparable run's numbers may be compared with, in one phrase (reports, console)."""
    if trust and trust.get("world"):
        return world_reason(trust["world"]).capitalize()
    return "Not comparable with the paper's numbers"


def further_reasons(trust: Mapping[str, Any], reasons: list[str]) -> list[str]:
    """`reasons` less the one `headline(trust)` already states."""
    stated = world_reason(trust["world"]) if trust.get("world") else None
    return [r for r in reasons if r != stated]


def render(trust: Mapping[str, Any] | None) -> str:
    """The trust facts as console lines."""
    if not trust:
        return "trust: no metrics.json with trust facts (run `lavida-bench score RUN`)"
    if trust.get("comparable_with_paper"):
        return "trust: comparable with the paper (official evaluators, released model, full data, no errors)"
    lines = [f"trust: {headline(trust)}:"]
    return "\n".join(lines + [f"  - {r}" for r in further_reasons(trust, trust.get("reasons", []))])
