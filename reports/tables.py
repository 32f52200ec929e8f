"""Paper-layout tables: one per benchmark, metrics as rows, variants as columns.

Each cell is the run's value in the paper's units with its 95% CI and sample count; beside each
variant with a published Lavida-O number sit the paper's value and the difference (ours − paper).
Counts of samples and errors close every table, so a number over 3 of 553 samples cannot pass
for a benchmark score.
"""
from __future__ import annotations

import math
from typing import Any

from lavida_bench.reports.layout import Layout, layout_for, order_tasks, order_variants, variant_label
from lavida_bench.reports.load import Run
from lavida_bench.reports.published import lavida_number, published_sources
from lavida_bench.reports.table import Table


def scaled(metric: dict[str, Any], scale: float) -> dict[str, Any]:
    """A metric converted to the paper's units (None for missing or NaN values)."""
    def conv(x: Any) -> float | None:
        return None if x is None or math.isnan(x) else float(x) * scale

    return {"value": conv(metric.get("value")), "ci_low": conv(metric.get("ci_low")),
            "ci_high": conv(metric.get("ci_high")), "n": int(metric.get("n") or 0)}


def cell_text(m: dict[str, Any], lay: Layout) -> str:
    if m["value"] is None:
        return f"– (n={m['n']})"
    return f"{lay.fmt(m['value'])} [{lay.fmt(m['ci_low'])}, {lay.fmt(m['ci_high'])}] n={m['n']}"


def diff_text(diff: float | None, lay: Layout) -> str:
    return "–" if diff is None else f"{diff:+.{lay.digits}f}"


def error_count(counts: dict[str, int]) -> int:
    return sum(int(counts.get(k, 0)) for k in ("generation_errors", "scoring_errors", "missing"))


def benchmark_table(run: Run, task: str) -> Table:
    """The paper-layout table of one benchmark in one run."""
    lay = layout_for(task)
    variants = order_variants([v for v in run.variants(task) if run.metrics.get(task, {}).get(v)])
    metrics = lay.order(list(dict.fromkeys(m for v in variants for m in run.metrics[task][v].get("metrics", {}))))
    with_paper = {v: any(lavida_number(task, m, v) for m in metrics) for v in variants}
    header = ["metric"]
    for v in variants:
        header += [variant_label(v)] + (["paper", "Δ"] if with_paper[v] else [])
    rows, records, sources = [], [], set()
    for name in metrics:
        row = [lay.label(name)]
        for v in variants:
            stored = run.metric(task, v, name)
            m = scaled(stored, lay.scale_for(name)) if stored else {"value": None, "ci_low": None, "ci_high": None, "n": 0}
            pub = lavida_number(task, name, v)
            diff = m["value"] - pub.value if pub and m["value"] is not None else None
            row.append(cell_text(m, lay) if stored else "–")
            if with_paper[v]:
                row += [lay.fmt(pub.value) if pub else "–", diff_text(diff, lay)]
            if pub:
                sources.add(pub.source)
            if stored or pub:
                records.append({"benchmark": task, "metric": name, "label": lay.label(name), "variant": v,
                                **m, "scale": lay.scale_for(name), "published": pub.value if pub else None,
                                "published_source": pub.citation if pub else None, "diff": diff})
        rows.append(row)
    count_row = ["samples scored / total (errors)"]
    for v in variants:
        count_row += [count_text(run.counts(task, v))] + (["", ""] if with_paper[v] else [])
    rows.append(count_row)
    scaled_rows = [lay.label(m) for m in metrics if lay.scale_for(m) != 1]
    notes = [f"x{lay.scale:g} (paper units): {', '.join(scaled_rows)}"] if scaled_rows else []
    if lay.lower_is_better:
        notes.append("lower is better")
    all_sources = published_sources()
    notes += [f"paper numbers: {s} = {all_sources.get(s, s)}" for s in sorted(sources)]
    return Table(key=task, title=lay.title, header=header, rows=rows, records=records, notes=notes)


def count_text(counts: dict[str, int]) -> str:
    if not counts:
        return "–"
    return f"{counts.get('scored', 0)} / {counts.get('samples', 0)} ({error_count(counts)} errors)"


def benchmark_tables(run: Run) -> list[Table]:
    """One table per benchmark with metrics, in the paper's benchmark order."""
    return [benchmark_table(run, t) for t in order_tasks(list(run.metrics)) if any(run.metrics[t].values())]
