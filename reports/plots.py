"""Plots of one run (matplotlib, no display needed): PNG and SVG of each.

- quality vs decoding steps (variants that set a step count, e.g. grounding 1 vs 4 steps);
- quality vs wall time per sample (the speed / quality trade-off, one panel per benchmark
  with several variants);
- what planning and reflection change over the unplanned variant (with paired CIs), one panel per
  unit, bars coloured by whether the change is an improvement in the metric's direction;
- per-category bars for every benchmark that reports categories (its score units only).

Every axis holds one unit: the metric facts in metrics.json say which.

Figures are built with `matplotlib.figure.Figure` directly and saved through the Agg renderer
(PNG) and the SVG backend, never through pyplot or `matplotlib.use`, so plotting needs no display
and changes no global state of the process.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from lavida_bench.reports.costs import trace_summary
from lavida_bench.reports.layout import layout_for, order_tasks, order_variants, paper_factor, units, variant_label
from lavida_bench.reports.load import Run, has_value
from lavida_bench.reports.table import Table
from lavida_bench.store import write_atomic

SAVE_META = {"png": {"Software": None}, "svg": {"Date": None}}


@dataclass
class Plot:
    key: str
    title: str
    png: Path
    svg: Path


def save(fig: Figure, out_dir: Path, key: str, title: str) -> Plot:
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{key}.png", out_dir / f"{key}.svg"
    fig.subplots_adjust(left=0.16, right=0.97, top=0.88, bottom=0.22, wspace=0.45, hspace=0.7)
    for path, kind, extra in ((png, "png", {"dpi": 100}), (svg, "svg", {})):  # atomic, as every report file
        buf = io.BytesIO()
        fig.savefig(buf, format=kind, metadata=SAVE_META[kind], **extra)
        write_atomic(path, buf.getvalue())
    return Plot(key, title, png, svg)


def short_title(task: str) -> str:
    return layout_for(task).title.split(" (")[0]


def headline_point(run: Run, task: str, variant: str) -> tuple[float, float, float] | None:
    """(value, err_low, err_high) of the headline metric in paper units."""
    name = run.headline(task)
    m = run.metric(task, variant, name) if name else None
    if not has_value(m):
        return None
    s = paper_factor(m)
    return m["value"] * s, max(0.0, (m["value"] - m["ci_low"]) * s), max(0.0, (m["ci_high"] - m["value"]) * s)


def headline_units(run: Run, task: str) -> str:
    m = run.headline_metric(task)
    return units(m) if m else ""


def quality_vs_steps(run: Run, out_dir: Path) -> Plot | None:
    """One panel per unit, one line per benchmark whose variants set a step count."""
    series: dict[str, list[tuple[int, tuple[float, float, float]]]] = {}
    for task in order_tasks(run.tasks()):
        for v in run.variants(task):
            steps = run.variant_options(v).get("steps")
            point = headline_point(run, task, v)
            if steps and point:
                series.setdefault(task, []).append((int(steps), point))
    if not series:
        return None
    by_unit: dict[str, list[str]] = {}
    for task in series:
        by_unit.setdefault(headline_units(run, task), []).append(task)
    fig = Figure(figsize=(5 * len(by_unit), 3.5))
    for i, (unit, tasks) in enumerate(by_unit.items()):
        ax = fig.add_subplot(1, len(by_unit), i + 1)
        for task in tasks:
            pts = sorted(series[task])
            lay = layout_for(task)
            ax.errorbar([p[0] for p in pts], [p[1][0] for p in pts],
                        yerr=[[p[1][1] for p in pts], [p[1][2] for p in pts]], marker="o", capsize=3,
                        label=f"{short_title(task)} {lay.label(run.headline(task) or '')}")
        ax.set_xlabel("decoding steps")
        ax.set_ylabel(f"score ({unit})")
        ax.legend(fontsize=7)
    fig.suptitle("Quality vs decoding steps")
    return save(fig, out_dir, "quality_vs_steps", "Quality vs decoding steps")


def quality_vs_time(run: Run, out_dir: Path) -> Plot | None:
    panels: dict[str, list[tuple[str, float, tuple[float, float, float]]]] = {}
    for task in order_tasks(run.tasks()):
        for v in order_variants(run.variants(task)):
            point = headline_point(run, task, v)
            cost = trace_summary(run.outputs(task, v))
            if point and cost.get("n"):
                panels.setdefault(task, []).append((v, cost["latency_s"], point))
    panels = {t: pts for t, pts in panels.items() if len(pts) > 1}  # one point trades off nothing
    if not panels:
        return None
    fig = Figure(figsize=(3.2 * min(len(panels), 4), 3.0 * ((len(panels) + 3) // 4)))
    for i, (task, pts) in enumerate(panels.items()):
        ax = fig.add_subplot((len(panels) + 3) // 4, min(len(panels), 4), i + 1)
        lay = layout_for(task)
        for v, t, (y, lo, hi) in pts:
            ax.errorbar([t], [y], yerr=[[lo], [hi]], marker="o", capsize=3, label=variant_label(v))
        ax.set_title(short_title(task), fontsize=9)
        ax.set_xlabel("s / sample", fontsize=8)
        ax.set_ylabel(f"{lay.label(run.headline(task) or '')} ({headline_units(run, task)})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    return save(fig, out_dir, "quality_vs_time", "Quality vs wall time per sample")


def planning_gains(cost_tables: list[Table], out_dir: Path) -> Plot | None:
    """Change over each benchmark's base variant (`costs.base_variant`) per variant: one panel per unit (0-1, 0-100, FID...),
    green where the change is an improvement in the metric's direction, red where it is not."""
    bars = [(t.records[0]["benchmark"], r) for t in cost_tables for r in t.records if r.get("gain") is not None]
    if not bars:
        return None
    by_unit: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for task, r in bars:
        by_unit.setdefault(str(r.get("units", "")), []).append((task, r))
    fig = Figure(figsize=(max(4, 1.1 * len(bars) + 1.5 * len(by_unit)), 3.5))
    for i, (unit, group) in enumerate(by_unit.items()):
        ax = fig.add_subplot(1, len(by_unit), i + 1)
        xs = list(range(len(group)))
        gains = [r["gain"] for _, r in group]
        err = [[max(0.0, r["gain"] - r["gain_ci_low"]) for _, r in group],
               [max(0.0, r["gain_ci_high"] - r["gain"]) for _, r in group]]
        good = [(r["gain"] < 0) if r.get("direction") == "lower" else (r["gain"] >= 0) for _, r in group]
        ax.bar(xs, gains, yerr=err, capsize=3, color=["#2e8b57" if g else "#c44e52" for g in good])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(xs, [f"{short_title(t)}\n{variant_label(r['variant'])}" for t, r in group], fontsize=7)
        lower = any(r.get("direction") == "lower" for _, r in group)
        ax.set_ylabel(f"Δ vs the unplanned variant ({unit}{', lower is better' if lower else ''})", fontsize=8)
    fig.suptitle("What planning and reflection change (green: better)")
    return save(fig, out_dir, "planning_gains", "Planning / reflection change over the unplanned variant")


def category_bars(run: Run, task: str, out_dir: Path) -> Plot | None:
    """The benchmark's score-unit metrics per variant (its diagnostics and other units left out)."""
    from lavida_bench.reports.tables import split_metrics

    lay = layout_for(task)
    variants = order_variants([v for v in run.variants(task) if run.metrics.get(task, {}).get(v)])
    names = split_metrics(run, task, variants)[0]
    if len(names) < 2:
        return None
    fig = Figure(figsize=(max(5, 0.6 * len(names) * max(1, len(variants))), 3.5))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(variants))
    for j, v in enumerate(variants):
        vals: list[Any] = []
        errs: list[list[float]] = [[], []]
        for name in names:
            m = run.metric(task, v, name)
            ok, f = has_value(m), paper_factor(m)
            vals.append(m["value"] * f if ok else 0.0)
            errs[0].append(max(0.0, (m["value"] - m["ci_low"]) * f) if ok else 0.0)
            errs[1].append(max(0.0, (m["ci_high"] - m["value"]) * f) if ok else 0.0)
        ax.bar([i + j * width for i in range(len(names))], vals, width, yerr=errs, capsize=2,
               label=variant_label(v))
    ax.set_xticks([i + width * (len(variants) - 1) / 2 for i in range(len(names))],
                  [lay.label(n) for n in names], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(headline_units(run, task))
    ax.set_title(f"{short_title(task)}: per category")
    ax.legend(fontsize=7)
    return save(fig, out_dir, f"categories_{task}", f"{lay.title}: per category")


def make_plots(run: Run, cost_tables: list[Table], out_dir: Path) -> list[Plot]:
    plots = [quality_vs_steps(run, out_dir), quality_vs_time(run, out_dir), planning_gains(cost_tables, out_dir)]
    plots += [category_bars(run, t, out_dir) for t in order_tasks(list(run.metrics))]
    return [p for p in plots if p is not None]
