"""What planning and reflection buy and what they cost, from one run's traces.

Per generation benchmark, each variant's headline score, its gain over the base variant (`plain`,
or the one variant that neither plans nor reflects; paired over the samples both variants scored,
with a bootstrap CI), and the time and forward passes per sample from the records' traces, overall
and per stage (plan, draw, judge ...), plus how many reflection rounds were used.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from lavida_bench.reports.layout import GENERATION_TASKS, layout_for, order_variants, paper_factor, units, variant_label
from lavida_bench.reports.load import Run, has_value
from lavida_bench.reports.paired import PairedDiff, estimator_for, paired_difference, unpaired_difference
from lavida_bench.reports.table import Table

BASE_VARIANT = "plain"


def trace_summary(records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean cost per ok sample: latency, NFE, steps, rounds, and per-stage seconds / NFE."""
    traces = [r.get("trace") or {} for r in records.values() if r.get("status") == "ok"]
    if not traces:
        return {"n": 0}
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")
    stages: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"seconds": [], "nfe": []})
    for t in traces:
        per: dict[str, dict[str, float]] = defaultdict(lambda: {"seconds": 0.0, "nfe": 0.0})
        for s in t.get("stages") or []:  # a stage may repeat (one per reflection round): sum them
            per[str(s.get("name"))]["seconds"] += float(s.get("seconds") or 0.0)
            per[str(s.get("name"))]["nfe"] += float(s.get("nfe") or 0)
        for name, v in per.items():
            stages[name]["seconds"].append(v["seconds"])
            stages[name]["nfe"].append(v["nfe"])
    n = len(traces)
    return {
        "n": n,
        "latency_s": mean([float(t.get("latency_s") or 0.0) for t in traces]),
        "nfe": mean([float(t.get("nfe") or 0) for t in traces]),
        "steps": mean([float(t.get("steps") or 0) for t in traces]),
        "rounds": mean([float(len(t.get("rounds") or [])) for t in traces]),
        # per-sample mean over all samples (a sample without the stage counts as 0)
        "stages": {k: {"seconds": sum(v["seconds"]) / n, "nfe": sum(v["nfe"]) / n} for k, v in stages.items()},
    }


def base_variant(run: Run, variants: list[str]) -> str | None:
    """The variant planning and reflection are measured against: `plain` where the task ran it,
    otherwise the one variant it ran that neither plans nor reflects (e.g. an editing variant
    with its own guidance); None where that is not one variant."""
    if BASE_VARIANT in variants:
        return BASE_VARIANT
    options = {v: run.variant_options(v) for v in variants}
    unplanned = [v for v in variants if not options[v].get("plan") and (options[v].get("reflect_rounds") or 1) <= 1]
    return unplanned[0] if len(unplanned) == 1 else None


def gain(run: Run, task: str, metric: str, base: str, variant: str) -> PairedDiff | None:
    """variant − base on the headline metric: paired when the metric decomposes into
    per-sample scores, otherwise from the two stored intervals."""
    base_m, new_m = run.metric(task, base, metric), run.metric(task, variant, metric)
    if not base_m or not new_m:
        return None
    if not has_value(base_m) or not has_value(new_m):
        return None
    base_scores, new_scores = run.ok_scores(task, base), run.ok_scores(task, variant)
    est = estimator_for(base_m)
    if est is None:
        return unpaired_difference(base_m, new_m)
    return paired_difference(est, base_scores, new_scores)


def stage_text(stages: dict[str, dict[str, float]]) -> str:
    return "; ".join(f"{k} {v['seconds']:.3f} s / {v['nfe']:.1f} NFE" for k, v in stages.items()) or "–"


def cost_table(run: Run, task: str) -> Table | None:
    """The gain/cost table of one generation benchmark (None unless it ran a base variant,
    `base_variant`, and at least one other)."""
    variants = order_variants(run.variants(task))
    base = base_variant(run, variants)
    if base is None or len(variants) < 2:
        return None
    variants = [base] + [v for v in variants if v != base]
    lay = layout_for(task)
    metric = run.headline(task)
    facts = run.metric(task, base, metric) if metric else None
    direction = (facts or {}).get("direction", "higher")
    base_cost = trace_summary(run.outputs(task, base))
    header = ["variant", f"{lay.label(metric) if metric else 'score'} ({units(facts)})",
              f"Δ vs {variant_label(base)} [95% CI]",
              "s / sample", "extra s", "NFE / sample", "extra NFE", "rounds", "stages (mean per sample)"]
    rows, records = [], []
    for v in variants:
        cost = trace_summary(run.outputs(task, v))
        stored = run.metric(task, v, metric) if metric else None
        g = gain(run, task, metric, base, v) if metric and v != base else None
        scale = paper_factor(stored)
        value = stored["value"] * scale if has_value(stored) else None
        if g is not None:
            g = PairedDiff(*(x * scale for x in (g.base, g.new, g.delta, g.ci_low, g.ci_high)), g.n)
        extra_s = cost.get("latency_s", float("nan")) - base_cost.get("latency_s", float("nan"))
        extra_nfe = cost.get("nfe", float("nan")) - base_cost.get("nfe", float("nan"))
        rows.append([
            variant_label(v), lay.fmt(value),
            "–" if g is None else f"{g.delta:+.{lay.digits}f} [{g.ci_low:+.{lay.digits}f}, {g.ci_high:+.{lay.digits}f}] "
                                  f"n={g.n}{word(g, direction)}",
            fmt(cost.get("latency_s")), "–" if v == base else fmt(extra_s, signed=True),
            fmt(cost.get("nfe"), 1), "–" if v == base else fmt(extra_nfe, 1, signed=True),
            fmt(cost.get("rounds"), 2), stage_text(cost.get("stages", {})),
        ])
        records.append({"benchmark": task, "variant": v, "base": base, "metric": metric, "value": value,
                        "units": units(facts),
                        "direction": direction, "improved": None if g is None else word(g, direction) == " (better)",
                        "gain": g.delta if g else None, "gain_ci_low": g.ci_low if g else None,
                        "gain_ci_high": g.ci_high if g else None, "gain_n": g.n if g else None,
                        "latency_s": cost.get("latency_s"), "extra_s": None if v == base else extra_s,
                        "nfe": cost.get("nfe"), "extra_nfe": None if v == base else extra_nfe,
                        "rounds": cost.get("rounds"), "n_traces": cost.get("n", 0),
                        "stages": cost.get("stages", {})})
    notes = [f"Δ: paired over samples both variants scored; {'lower' if direction == 'lower' else 'higher'} is "
             "better; time = traced wall time per sample (device-synchronised, this run's device)"]
    return Table(key=f"cost_{task}", title=f"{lay.title}: what planning and reflection buy and cost",
                 header=header, rows=rows, records=records, notes=notes)


def word(g: PairedDiff, direction: str) -> str:
    """" (better)" / " (worse)" when the whole CI is on one side of zero, in the metric's direction."""
    if direction not in ("higher", "lower") or g.ci_low <= 0 <= g.ci_high:
        return ""
    return " (better)" if (g.ci_low > 0) == (direction == "higher") else " (worse)"


def fmt(x: float | None, digits: int = 3, signed: bool = False) -> str:
    if x is None or math.isnan(x):
        return "–"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def cost_tables(run: Run) -> list[Table]:
    tasks = [t for t in GENERATION_TASKS if t in run.tasks()]
    return [t for t in (cost_table(run, task) for task in tasks) if t is not None]
