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

from lavida_bench.reports.costs import cost_tables
from lavida_bench.reports.gallery import build_gallery
from lavida_bench.reports.html import render_page
from lavida_bench.reports.load import Run, load_run
from lavida_bench.reports.plots import make_plots
from lavida_bench.reports.speed import speed_table
from lavida_bench.reports.table import Table, dumps, to_csv, to_latex, to_markdown
from lavida_bench.reports.tables import benchmark_tables
from lavida_bench.store import OUTPUTS, write_text
from lavida_bench.trust import further_reasons, headline

REPORT_DIR = "report"


def trust_reasons(run: Run) -> list[str]:
    """Why this run's numbers may not stand beside the paper's (empty if they may): the trust
    facts scoring stored in metrics.json (lavida_bench/trust.py), never re-derived here."""
    if not run.trust:
        return ["no trust facts (the run is not scored yet)"]
    return [] if run.trust.get("comparable_with_paper") else further_reasons(run.trust, run.trust.get("reasons", []))


def unfinished(run: Run) -> list[str]:
    """A run killed during generation: rank shards that were never merged into outputs.jsonl."""
    left = [f"{t}/{v}" for t, v in run.store.task_variants()
            if any(run.store.records_dir(t, v).glob(f"{OUTPUTS}.part-r*.jsonl"))]
    return [f"generation did not finish for {', '.join(left)} (resume the run to complete it)"] if left else []


def write_table_files(table: Table, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / f"{table.key}.md", to_markdown(table))
    write_text(folder / f"{table.key}.csv", to_csv(table))
    write_text(folder / f"{table.key}.tex", to_latex(table))
    write_text(folder / f"{table.key}.json", dumps(table.to_json()))


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
    write_text(extra / "tables.json", dumps([t.to_json() for t in all_tables]))
    plots = make_plots(run, costs, extra / "plots")
    gallery = build_gallery(run, gallery_per_variant)
    reasons = unfinished(run) + trust_reasons(run)
    title = f"lavida-bench report: {run.label} (model {run.model_name})"

    md = [f"# {title}", ""]
    if reasons:
        md += [f"> **{headline(run.trust)}:** {'; '.join(reasons)}.", ""]
    md += ["## Benchmarks", ""] + [to_markdown(t, 3) for t in benchmark]
    md += ["## What planning and reflection buy and cost", ""] + [to_markdown(t, 3) for t in costs]
    md += ["## Speed", ""] + ([to_markdown(speed, 3)] if speed else ["no speed rows in this run", ""])
    md += ["## Plots", ""] + [f"- {p.title}: `{p.png.relative_to(out)}`, `{p.svg.relative_to(out)}`"
                              for p in plots] + [""]
    md += ["## Gallery", "", f"{len(gallery[0])} samples in report.html"] + [f"- {n}" for n in gallery[1]] + [""]
    md_path, html_path = out / "report.md", out / "report.html"
    out.mkdir(parents=True, exist_ok=True)
    write_text(md_path, "\n".join(md))  # atomic, like every report file: a kill never leaves half a page
    write_text(html_path, render_page(title, headline(run.trust), reasons, benchmark, costs, speed, plots, gallery, run.manifest))
    return [md_path, html_path, extra]
