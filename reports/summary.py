"""Per-run summary report: one metrics table per task (variants as columns), counts, errors.

Writes RUN/report.md and RUN/report.html next to the records; it reads metrics.json and the
manifest and never touches the records themselves.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

DEMO_BANNER = ("These numbers come from a tiny model with random weights and/or stand-in evaluator "
               "backends: they prove the pipeline runs end to end and mean nothing about Lavida-O.")


def cell(metric: dict[str, Any]) -> str:
    v, lo, hi, n = metric["value"], metric["ci_low"], metric["ci_high"], metric["n"]
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}] n={n}"


def is_demo(manifest: dict[str, Any]) -> bool:
    model = manifest.get("model", {})
    standin = any(isinstance(b, dict) and b.get("standin") for b in manifest.get("backends", {}).values())
    return bool(model.get("random_weights")) or standin or model.get("name") == "constant"


def task_table(task: str, variants: dict[str, Any]) -> list[list[str]]:
    names = sorted({m for v in variants.values() for m in v["metrics"]})
    header = ["metric"] + list(variants)
    rows = [header]
    for m in names:
        rows.append([m] + [cell(v["metrics"][m]) if m in v["metrics"] else "-" for v in variants.values()])
    counts = ["samples", "generated", "generation_errors", "missing", "scored", "scoring_errors"]
    for c in counts:
        rows.append([f"({c})"] + [str(v["counts"][c]) for v in variants.values()])
    return rows


def markdown(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


def html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(run: Path) -> list[Path]:
    manifest = json.loads((run / "manifest.json").read_text())
    metrics_path = run / "metrics.json"
    results = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    title = f"lavida-bench report: {run.name} (model {manifest.get('model', {}).get('name')})"
    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    if is_demo(manifest):
        md += [f"> **Not meaningful:** {DEMO_BANNER}", ""]
        body.append(f"<p class='banner'><b>Not meaningful:</b> {html.escape(DEMO_BANNER)}</p>")
    for task, variants in results.items():
        rows = task_table(task, variants)
        md += [f"## {task}", "", markdown(rows), ""]
        body += [f"<h2>{html.escape(task)}</h2>", html_table(rows)]
    md += ["## Manifest", "", "```json", json.dumps({k: manifest[k] for k in ("created", "git", "versions", "device")
                                                    if k in manifest}, indent=2), "```", ""]
    style = "body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px}.banner{background:#fee;padding:8px}"
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
    (run / "report.md").write_text("\n".join(md))
    (run / "report.html").write_text(page)
    return [run / "report.md", run / "report.html"]
