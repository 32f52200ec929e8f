"""What `run` prints when it finishes: the headline metric of every task x variant, with its scale,
direction, 95% interval and sample count, like the results table lmms-eval prints."""
from __future__ import annotations

import math
from typing import Any, Mapping

from lavida_bench.scoring import error_count


def task_entries(results: Mapping[str, Any]) -> Mapping[str, Any]:
    """{task: {variant: summary}} from a metrics.json document (either format)."""
    return results.get("tasks", {}) if "format" in results else results


COMMON_HEADLINES = ("overall", "acc", "fid")  # for metrics.json written before specs flagged one


def headline(metrics: Mapping[str, Any]) -> str | None:
    """The metric its task's spec marks as the headline (metrics.json carries the flag)."""
    flagged = [name for name, m in metrics.items() if isinstance(m, Mapping) and m.get("headline")]
    common = [name for name in COMMON_HEADLINES if name in metrics]
    return (flagged or common or sorted(metrics) or [None])[0]


def fmt(x: Any) -> str:
    return "-" if not isinstance(x, (int, float)) or math.isnan(x) else f"{x:.4g}"


def sample_count(m: Mapping[str, Any]) -> str:
    """n, with the metric's minimum where n is below it (too few samples for `compare` to judge)."""
    n, least = int(m.get("n", 0)), m.get("min_n")
    return f"{n} (min {least})" if isinstance(least, int) and n < least else str(n)


def results_rows(results: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for task, variants in task_entries(results).items():
        for variant, summary in variants.items():
            metrics, counts = summary.get("metrics", {}), summary.get("counts", {})
            name = headline(metrics)
            m = metrics.get(name, {}) if name else {}
            errors = error_count(counts)
            better = m.get("direction") if m.get("direction") in ("higher", "lower") else "-"
            rows.append([task, variant, name or "-", str(m.get("scale") or "-"), better, fmt(m.get("value")),
                         f"[{fmt(m.get('ci_low'))}, {fmt(m.get('ci_high'))}]", sample_count(m), str(errors)])
    return rows


def results_table(results: Mapping[str, Any]) -> str:
    """A plain-text table, one row per task x variant: each value with its scale, which way is
    better, its 95% interval and its sample count."""
    header = ["task", "variant", "metric", "scale", "better", "value", "95% CI", "n", "errors"]
    rows = [header] + results_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
