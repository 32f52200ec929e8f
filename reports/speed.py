"""The speed table: rows the speed suite wrote under RUN/speed/*.json, rendered as they are.

The suite (another module) measures side by side in one process and writes rows such as
{capability, model, setting, median_s, iqr_s, nfe, speedup, device}; this module only lays them
out, known columns first, any others after, so a new measured field shows up without a change.
"""
from __future__ import annotations

from typing import Any

from lavida_bench.reports.load import Run
from lavida_bench.reports.table import Table

KNOWN = ("benchmark", "capability", "model", "setting", "batch_size", "median_s", "iqr_s", "nfe",
         "speedup", "peak_memory_bytes", "device")
HIDDEN = {"_file"}


def cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, sort_keys=True)
    return str(value)


def speed_table(run: Run) -> Table | None:
    """None when the run has no speed rows."""
    rows = run.speed_rows
    if not rows:
        return None
    seen = list(dict.fromkeys(k for r in rows for k in r if k not in HIDDEN))
    columns = [k for k in KNOWN if k in seen] + [k for k in seen if k not in KNOWN]
    files = sorted({r["_file"] for r in rows})
    return Table(key="speed", title="Speed (speed suite)", header=columns,
                 rows=[[cell(r.get(k)) for k in columns] for r in rows],
                 records=[{k: r.get(k) for k in columns} for r in rows],
                 notes=[f"from {', '.join('speed/' + f for f in files)}; times are medians over repeats "
                        "on the device named in each row"])
