"""Paper-layout tables: one per benchmark, metrics as rows, variants as columns.

Each cell is the run's value in the paper's units with its 95% CI and sample count; beside each
variant with a published Lavida-O number sit the paper's value and the difference (ours − paper),
marked better or worse in the metric's declared direction. A table holds one unit: the
benchmark's headline units; rates, timings and other units go to the benchmark's diagnostics
table. Counts of samples and errors close every table, so a number over 3 of 553 samples cannot
pass for a benchmark score.
"""
from __future__ import annotations

from typing import Any

from lavida_bench.reports.layout import Layout, layout_for, order_tasks, order_variants, paper_factor, units, variant_label
from lavida_bench.reports.load import Run
from lavida_bench.reports.published import lavida_number
from lavida_bench.reports.table import Table
from lavida_bench.scoring import error_count
from lavida_bench.trust import further_reasons, headline

EMPTY = {"value": None, "ci_low": None, "ci_high": None, "n": 0}


def scaled(metric: dict[str, Any], factor: float) -> dict[str, Any]:
    """A metric converted to the paper's units (None for a missing value)."""
    def conv(x: Any) -> float | None:
        return None if x is None else float(x) * factor

    return {"value": conv(metric.get("value")), "ci_low": conv(metric.get("ci_low")),
            "ci_high": conv(metric.get("ci_high")), "n": int(metric.get("n") or 0)}


def cell_text(m: dict[str, Any], lay: Layout) -> str:
    if m["value"] is None:
        return f"– (n={m['n']})"
    return f"{lay.fmt(m['value'])} [{lay.fmt(m['ci_low'])}, {lay.fmt(m['ci_high'])}] n={m['n']}"


def judged(diff: float | None, direction: str) -> str:
    """"better", "worse" or "" for ours − paper in the metric's direction."""
    if diff is None or diff == 0 or direction not in ("higher", "lower"):
        return ""
    return "better" if (diff > 0) == (direction == "higher") else "worse"


def diff_text(diff: float | None, lay: Layout, direction: str) -> str:
    if diff is None:
        return "–"
    word = judged(diff, direction)
    return f"{diff:+.{lay.digits}f}" + (f" ({word})" if word else "")


def split_metrics(run: Run, task: str, variants: list[str]) -> tuple[list[str], list[str]]:
    """(metrics in the headline's units, everything else: diagnostics, rates, other units)."""
    facts: dict[str, dict[str, Any]] = {}
    for v in variants:
        for name, m in run.metrics[task][v].get("metrics", {}).items():
            facts.setdefault(name, m)
    headline = run.headline(task)
    unit = units(facts.get(headline)) if headline else None
    main = [n for n, m in facts.items() if m.get("direction") != "diagnostic" and units(m) == unit]
    lay = layout_for(task)
    return lay.order(main), lay.order([n for n in facts if n not in main])


def metric_row(run: Run, task: str, name: str, variants: list[str], with_paper: dict[str, bool],
               lay: Layout) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """One table row: display cells, their CSS classes, and the machine records."""
    row, classes, records = [lay.label(name)], [""], []
    for v in variants:
        stored = run.metric(task, v, name)
        m = scaled(stored, paper_factor(stored)) if stored else dict(EMPTY)
        direction = (stored or {}).get("direction", "")
        pub = lavida_number(task, name, v) if with_paper[v] else None
        diff = m["value"] - pub.value if pub and m["value"] is not None else None
        row.append(cell_text(m, lay) if stored else "–")
        classes.append("")
        if with_paper[v]:
            row += [lay.fmt(pub.value) if pub else "–", diff_text(diff, lay, direction)]
            classes += ["", judged(diff, direction)]
        if stored or pub:
            records.append({"benchmark": task, "metric": name, "label": lay.label(name), "variant": v, **m,
                            "units": units(stored), "direction": direction, "paper_factor": paper_factor(stored),
                            "published": pub.value if pub else None,
                            "published_source": pub.citation if pub else None, "diff": diff})
    return row, classes, records


def benchmark_table(run: Run, task: str, diagnostics: bool = False) -> Table | None:
    """The paper-layout table of one benchmark (or, with `diagnostics`, of its other metrics)."""
    lay = layout_for(task)
    variants = order_variants([v for v in run.variants(task) if run.metrics.get(task, {}).get(v)])
    main, other = split_metrics(run, task, variants)
    metrics = other if diagnostics else main
    if not metrics:
        return None
    world = bool(run.trust.get("world"))  # a synthetic-world run stands beside nothing published
    with_paper = {v: not (diagnostics or world) and any(lavida_number(task, m, v) for m in metrics) for v in variants}
    extra = ["units", "better"] if diagnostics else []  # one unit per table, else one per row
    header = ["metric"] + extra + [c for v in variants
                                   for c in [variant_label(v)] + (["paper", "Δ"] if with_paper[v] else [])]
    rows, classes, records, citations = [], [], [], set()
    for name in metrics:
        row, cls, recs = metric_row(run, task, name, variants, with_paper, lay)
        facts = recs[0] if recs else {}
        rows.append(row[:1] + ([facts.get("units", ""), facts.get("direction", "")] if diagnostics else []) + row[1:])
        classes.append(cls[:1] + [""] * len(extra) + cls[1:])
        records += recs
        citations |= {r["published_source"] for r in recs if r["published_source"]}
    rows.append(["samples scored / total (errors)"] + [""] * len(extra)
                + [c for v in variants for c in [count_text(run.counts(task, v))] + (["", ""] if with_paper[v] else [])])
    return Table(key=f"{task}_diagnostics" if diagnostics else task,
                 title=f"{lay.title}: diagnostics and other units" if diagnostics else lay.title,
                 header=header, rows=rows, records=records,
                 notes=table_notes(run, task, main, diagnostics, citations), classes=classes)


def table_notes(run: Run, task: str, main: list[str], diagnostics: bool, citations: set[str]) -> list[str]:
    facts = run.headline_metric(task)
    notes = []
    if diagnostics:
        notes.append("rates, timings and metrics in other units than the benchmark's score; diagnostics "
                     "(e.g. latency) have no better direction")
    elif facts:
        factor = paper_factor(facts)
        notes.append(f"units: {units(facts)}" + (f" (stored x{factor:g}, as the paper prints)" if factor != 1 else "")
                     + f"; {'lower' if facts.get('direction') == 'lower' else 'higher'} is better")
    trust = run.task_trust(task)
    if not trust.get("comparable_with_paper") and not diagnostics:
        notes.append(f"{headline(run.trust)}: " + "; ".join(further_reasons(run.trust, trust.get("reasons", []))))
    notes += [f"paper numbers: {c}" for c in sorted(citations)]
    return notes


def count_text(counts: dict[str, int]) -> str:
    if not counts:
        return "–"
    return f"{counts.get('scored', 0)} / {counts.get('samples', 0)} ({error_count(counts)} errors)"


def benchmark_tables(run: Run) -> list[Table]:
    """Per benchmark, in the paper's order: its score table, then its diagnostics table."""
    tables = []
    for t in order_tasks(list(run.metrics)):
        if any(run.metrics[t].values()):
            tables += [x for x in (benchmark_table(run, t), benchmark_table(run, t, diagnostics=True)) if x]
    return tables
