"""A table in two forms, and its renderers.

Every report table carries a display form (header + rows of strings, for Markdown, LaTeX and
HTML) and a machine form (`records`, one flat dict per number with its CI, sample count and
source, for CSV and JSON). Builders fill both from the same numbers, so the four outputs of a
table can never disagree.
"""
from __future__ import annotations

import csv
import html
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    key: str  # file stem, e.g. "geneval" or "planning_cost"
    title: str
    header: list[str]
    rows: list[list[str]]
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    classes: list[list[str]] = field(default_factory=list)  # optional CSS class per cell (HTML only)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "header": self.header, "rows": self.rows,
                "records": self.records, "notes": self.notes}


def to_markdown(table: Table, level: int = 2) -> str:
    def esc(c: str) -> str:
        return c.replace("|", "\\|").replace("\n", " ")

    lines = [f"{'#' * level} {table.title}", ""]
    lines.append("| " + " | ".join(esc(c) for c in table.header) + " |")
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.header))) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in table.rows]
    lines += [""] + [f"*{n}*" for n in table.notes] + ([""] if table.notes else [])
    return "\n".join(lines)


LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                 "–": "--", "Δ": r"$\Delta$", "±": r"$\pm$"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}) inside a table float."""
    cols = "l" + "r" * (len(table.header) - 1)
    out = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(table.title)}}}",
           rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
           " & ".join(latex_escape(c) for c in table.header) + r" \\", r"\midrule"]
    out += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in table.rows]
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def to_csv(table: Table) -> str:
    """The machine form, one row per record (columns: union of record keys, first-seen order)."""
    columns: list[str] = []
    for r in table.records:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in table.records:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    return buf.getvalue()


def to_html(table: Table) -> str:
    """HTML table; a cell with a class (`better`, `worse`...) is coloured by the page's style."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.header)

    def cell(i: int, j: int, text: str) -> str:
        cls = table.classes[i][j] if i < len(table.classes) and j < len(table.classes[i]) else ""
        return f"<td class='{cls}'>{html.escape(text)}</td>" if cls else f"<td>{html.escape(text)}</td>"

    body = "".join("<tr>" + "".join(cell(i, j, c) for j, c in enumerate(row)) + "</tr>"
                   for i, row in enumerate(table.rows))
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in table.notes)
    return (f"<h3 id='t-{html.escape(table.key)}'>{html.escape(table.title)}</h3>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}")


def dumps(obj: Any) -> str:
    """JSON text with NaN written as null (strict JSON readers reject NaN)."""
    return json.dumps(nan_to_none(obj), indent=2, ensure_ascii=False) + "\n"


def nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [nan_to_none(v) for v in obj]
    return obj
