"""`write_report`: everything a person takes away from one run, written next to it.

Reads the run folder (never its records' files for writing) and writes:

    OUT/report.md                   all tables, plot and gallery references
    OUT/report.html                 self-contained page (see html.py)
    OUT/report/tables.json          every table, display and machine form
    OUT/report/tables/<key>.{md,csv,tex,json}
    OUT/report/plots/<key>.{png,svg}

OUT defaults to the run folder itself (README: RUN/report.md, RUN/report.html).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lavida_bench.reports.costs import cost_tables
from lavida_bench.reports.gallery import build_gallery
from lavida_bench.reports.html import render_page
from lavida_bench.reports.load import Run, load_run
from lavida_bench.reports.plots import make_plots
from lavida_bench.reports.speed import speed_table
from lavida_bench.reports.table import Table, dumps, to_csv, to_latex, to_markdown
from lavida_bench.reports.tables import benchmark_tables

REPORT_DIR = "report"


def not_meaningful(manifest: dict[str, Any]) -> list[str]:
    """Why this run's numbers mean nothing about Lavida-O (empty if they may): stand-in
    evaluators, random or tiny weights, or the constant reference baseline."""
    reasons = []
    backends = manifest.get("backends") or {}
    standins = sorted(k for k, b in backends.items() if isinstance(b, dict) and b.get("standin"))
    if standins:
        reasons.append(f"stand-in evaluator backends: {', '.join(standins)}")
    model = manifest.get("model") or {}
    text = " ".join(str(model.get(k, "")) for k in ("name", "kind", "config", "preset", "size")).lower()
    if model.get("random_weights") or "random" in text:
        reasons.append("model with random weights")
    elif "tiny" in text:
        reasons.append("tiny model configuration")
    if model.get("name") == "constant" or "baseline" in text:
        reasons.append("constant reference baseline (not a real model)")
    if (manifest.get("config") or {}).get("name") == "demo" and not reasons:
        reasons.append("demo run")
    return reasons


def write_table_files(table: Table, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{table.key}.md").write_text(to_markdown(table), encoding="utf-8")
    (folder / f"{table.key}.csv").write_text(to_csv(table), encoding="utf-8")
    (folder / f"{table.key}.tex").write_text(to_latex(table), encoding="utf-8")
    (folder / f"{table.key}.json").write_text(dumps(table.to_json()), encoding="utf-8")


def write_report(run_dir: Path, out_dir: Path | None = None, *, gallery_per_variant: int = 2,
                 label: str | None = None) -> list[Path]:
    """Write the report of one run; returns [report.md, report.html, report/ folder]."""
    run: Run = load_run(run_dir, label)
    out = Path(out_dir) if out_dir is not None else run.root
    extra = out / REPORT_DIR
    benchmark = benchmark_tables(run)
    costs = cost_tables(run)
    speed = speed_table(run)
    all_tables = benchmark + costs + ([speed] if speed else [])
    for t in all_tables:
        write_table_files(t, extra / "tables")
    (extra / "tables.json").write_text(dumps([t.to_json() for t in all_tables]), encoding="utf-8")
    plots = make_plots(run, costs, extra / "plots")
    gallery = build_gallery(run, gallery_per_variant)
    reasons = not_meaningful(run.manifest)
    title = f"lavida-bench report: {run.label} (model {run.model_name})"

    md = [f"# {title}", ""]
    if reasons:
        md += [f"> **Not meaningful:** {'; '.join(reasons)}. These numbers prove the pipeline runs and "
               "say nothing about Lavida-O.", ""]
    md += ["## Benchmarks", ""] + [to_markdown(t, 3) for t in benchmark]
    md += ["## What planning and reflection buy and cost", ""] + [to_markdown(t, 3) for t in costs]
    md += ["## Speed", ""] + ([to_markdown(speed, 3)] if speed else ["no speed rows in this run", ""])
    md += ["## Plots", ""] + [f"- {p.title}: `{p.png.relative_to(out)}`, `{p.svg.relative_to(out)}`"
                              for p in plots] + [""]
    md += ["## Gallery", "", f"{len(gallery[0])} samples in report.html"] + [f"- {n}" for n in gallery[1]] + [""]
    md_path, html_path = out / "report.md", out / "report.html"
    out.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(md), encoding="utf-8")
    html_path.write_text(render_page(title, reasons, benchmark, costs, speed, plots, gallery, run.manifest),
                         encoding="utf-8")
    return [md_path, html_path, extra]
