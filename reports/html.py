"""One self-contained HTML page per run: every image is inlined as a base64 data URI, there is
no script and no external stylesheet, so the file can be mailed, archived or opened offline.

The page holds, in order: a banner when the numbers are not meaningful (tiny random model or
stand-in evaluators), the benchmark tables, the planning/reflection cost tables, the speed
table, the plots, the sample gallery and the manifest (settings, versions, fingerprints).
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from lavida_bench.reports.gallery import GalleryItem
from lavida_bench.reports.layout import variant_label
from lavida_bench.reports.plots import Plot
from lavida_bench.reports.table import Table, nan_to_none, to_html
from PIL import Image

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;background:#fff}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}
th{background:#f2f2f2}
.banner{background:#fde2e2;border:2px solid #c0392b;padding:10px;font-size:15px}
.note{color:#555;font-size:12px;margin:2px 0}
td.better{color:#1a7f37}
td.worse{color:#b42318;font-weight:bold;background:#fde2e2}
.verdict{border:2px solid #888;padding:10px;font-size:15px;margin:.5em 0}
.verdict.fail{border-color:#c0392b;background:#fde2e2}
.verdict.pass{border-color:#1a7f37;background:#e6f4ea}
.trust{background:#fff4e5;border:1px solid #e0a040;padding:8px;font-size:13px}
.plots{display:flex;flex-wrap:wrap;gap:8px}
.plots h2{width:100%}
.plots img{max-width:100%;border:1px solid #ddd}
.gallery{display:flex;flex-wrap:wrap;gap:10px}
.item{border:1px solid #ccc;padding:6px;max-width:560px;font-size:12px}
.panels{display:flex;flex-wrap:wrap;gap:6px}
figure{margin:0}
figcaption{font-size:11px;max-width:256px;word-wrap:break-word}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:11px;max-height:500px}
"""


def data_uri(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def file_uri(path: Path) -> str:
    mime = {".png": "image/png", ".svg": "image/svg+xml"}[path.suffix]
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def esc(text: Any) -> str:
    return html.escape(str(text))


def banner(headline: str, reasons: list[str]) -> str:
    if not reasons:
        return ""
    return (f"<p class='banner' id='trust'><b>{esc(headline)}.</b> "
            + esc("; ".join(reasons)) + ".</p>")


def plots_section(plots: list[Plot]) -> str:
    figs = "".join(f"<figure><img src='{file_uri(p.png)}' alt='{esc(p.title)}'>"
                   f"<figcaption>{esc(p.title)} ({esc(p.png.name)}, {esc(p.svg.name)})</figcaption></figure>"
                   for p in plots)
    return f"<section class='plots' id='plots'><h2>Plots</h2>{figs or '<p>none</p>'}</section>"


def gallery_section(items: list[GalleryItem], notes: list[str]) -> str:
    cards = []
    for it in items:
        panels = "".join(
            "<figure>" + (f"<img src='{data_uri(p.image)}' alt='{esc(p.title)}'>" if p.image is not None
                          else "<div class='note'>(no image)</div>")
            + f"<figcaption><b>{esc(p.title)}</b>{'<br>' + esc(p.note) if p.note else ''}</figcaption></figure>"
            for p in it.panels)
        prompt = f"<div>prompt: <i>{esc(it.prompt[:300])}</i></div>" if it.prompt else ""
        cards.append(f"<div class='item'><div><b>{esc(it.task)}</b> / {esc(variant_label(it.variant))} / "
                     f"{esc(it.sample_id)}</div>{prompt}<div class='panels'>{panels}</div>"
                     f"<div class='note'>{esc(it.caption)}</div></div>")
    note_html = "".join(f"<p class='note'>{esc(n)}</p>" for n in notes)
    return (f"<section id='gallery'><h2>Sample gallery</h2>{note_html}"
            f"<div class='gallery'>{''.join(cards) or '<p>no samples</p>'}</div></section>")


def manifest_section(manifest: dict[str, Any]) -> str:
    keys = ("created", "lavida_bench", "git", "command", "seed", "world_size", "device", "versions",
            "model", "backends", "tasks", "config", "resumes")
    parts = []
    for k in keys:
        if k in manifest:
            body = json.dumps(nan_to_none(manifest[k]), indent=2, sort_keys=True, ensure_ascii=False)
            parts.append(f"<details{' open' if k in ('device', 'model') else ''}><summary>{esc(k)}</summary>"
                         f"<pre>{esc(body)}</pre></details>")
    return f"<section id='manifest'><h2>Manifest</h2>{''.join(parts)}</section>"


def tables_section(section_id: str, title: str, tables: list[Table]) -> str:
    body = "".join(to_html(t) for t in tables) or "<p>none</p>"
    return f"<section id='{section_id}'><h2>{esc(title)}</h2>{body}</section>"


def page(title: str, headline: str, reasons: list[str], sections: list[str]) -> str:
    """A complete, self-contained HTML document."""
    body = [f"<h1>{esc(title)}</h1>", banner(headline, reasons)] + sections
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")


def render_page(title: str, headline: str, reasons: list[str], benchmark: list[Table], costs: list[Table],
                speed: Table | None, plots: list[Plot], gallery: tuple[list[GalleryItem], list[str]],
                manifest: dict[str, Any]) -> str:
    """The run report page."""
    return page(title, headline, reasons, [
        tables_section("benchmarks", "Benchmarks (paper layout)", benchmark),
        tables_section("planning", "What planning and reflection buy and cost", costs),
        tables_section("speed", "Speed", [speed] if speed else []),
        plots_section(plots), gallery_section(*gallery), manifest_section(manifest)])
