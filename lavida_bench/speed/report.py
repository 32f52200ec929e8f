"""`speed.md`: the speed suite's tables, written from the `speed.json` dict."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if isinstance(x, float):
        if x == 0:
            return "0"
        if abs(x) >= 1000 or abs(x) < 1e-3:
            return f"{x:.{digits}g}"
        return f"{x:.{digits}f}" if abs(x) < 10 else f"{x:.{max(digits - 2, 1)}f}"
    return str(x)


def seconds(spread: dict[str, float]) -> str:
    return f"{fmt(spread['median'])} ({fmt(spread['p10'])}-{fmt(spread['p90'])})"


def mib(n: int | None) -> str:
    return "-" if not n else f"{n / 2**20:.0f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def case_rows(cases: list[dict[str, Any]]) -> list[str]:
    header = ["case", "batch", "s/sample median (p10-p90)", "samples/s", "units/s", "NFE", "passes",
              "prefix enc.", "max seq", "peak MiB", "floor s/batch", "measured/floor"]
    rows = [[c["case"], str(c["batch"]), seconds(c["latency_s"]), fmt(c["samples_per_s"]),
             f"{fmt(c['units_per_s'])} {c['units']}", fmt(c["nfe"]), fmt(c.get("network_passes")),
             fmt(c.get("prefix_encodings")), fmt(c.get("max_sequence")), mib(c["peak_memory_bytes"]),
             fmt(c.get("floor_s")), fmt(c.get("measured_over_floor"))] for c in cases]
    return table(header, rows)


def stage_rows(cases: list[dict[str, Any]]) -> list[str]:
    rows = [[c["case"], str(c["batch"]), stage, fmt(v["seconds"]), str(v["nfe"])]
            for c in cases for stage, v in (c.get("stages") or {}).items()]
    return table(["case", "batch", "stage", "s/sample", "NFE"], rows) if rows else []


def comparison_rows(comparisons: dict[str, Any]) -> list[str]:
    header = ["comparison", "batch", "plain / baseline", "s/sample", "optimized / ours", "s/sample",
              "speedup", "floor predicts", "equal outputs"]
    rows = []
    for key, entries in comparisons.items():
        for e in entries if isinstance(entries, list) else [entries]:
            if "labels" not in e:
                rows.append([key, "-", e.get("note", "not available"), "-", "-", "-", "-", "-", "-"])
                continue
            a, b = e["labels"]
            rows.append([key, str(e[a]["batch"]), a, fmt(e[a]["latency_s"]["median"]), b,
                         fmt(e[b]["latency_s"]["median"]), fmt(e["speedup"]), fmt(e["predicted_speedup"]),
                         "n/a" if e["equal_outputs"] is None else fmt(e["equal_outputs"])])
    return table(header, rows)


def header(result: dict[str, Any]) -> list[str]:
    m = result["machine"]
    device = (f"- device: {m.get('gpu', m['device'])}, dtype {result['dtype']}, torch {m['torch']}, "
              f"{m['cpu_count']} CPUs, {m['torch_threads']} torch threads, "
              f"load average {fmt(m.get('load_average_1m'))}")
    lines = ["# Lavida-O speed suite", "",
             f"- weights: **{result['weights']}** (latency does not depend on weight values)", device,
             f"- total wall time: {fmt(result['wall_s'])} s", ""]
    rates = result.get("device_rates")
    if rates:
        lines += [(f"- measured matmul rate {rates['matmul_flops'] / 1e12:.3g} TFLOP/s, copy bandwidth "
                   f"{rates['bandwidth_bytes'] / 1e9:.3g} GB/s ({rates['dtype']})"), ""]
    return lines


def split_text(harness: dict[str, Any]) -> str:
    if harness.get("fixed_s") is None:
        return ""
    return (f": fixed per-run {fmt(harness['fixed_s'])} s, between model calls {fmt(harness['between_calls_s'])} s "
            f"({fmt(harness['between_calls_fraction'])} of the generation phase)")


def warm_text(harness: dict[str, Any]) -> str:
    warm = harness["warm"]
    return (f"run again in this process: wall {fmt(warm['wall_s'])} s, overhead {fmt(warm['overhead_fraction_of_wall'])} "
            f"of wall{split_text(warm)}, the same model calls made directly {fmt(warm['direct_model_s'])} s, so "
            f"{fmt(warm['overhead_vs_direct_fraction'])} of wall against them")


def harness_lines(harness: dict[str, Any]) -> list[str]:
    if not harness.get("available"):
        return ["## Harness overhead", "", harness["note"], ""]
    lines = ["## Harness overhead", "",
             (f"{harness['samples']} samples: wall {fmt(harness['wall_s'])} s, model {fmt(harness['model_s'])} s, "
              f"overhead {fmt(harness['overhead_per_sample_s'])} s/sample "
              f"({fmt(harness['overhead_fraction_of_wall'])} of wall){split_text(harness)}; {warm_text(harness)}; "
              f"scoring "
              f"{fmt(harness['scoring_samples_per_s'])} samples/s. {harness['note']}."), ""]
    if harness.get("error_records"):
        lines += [(f"{harness['error_records']} sample(s) failed in the harness run (not counted as model "
                   f"time); first: {harness['first_error']}"), ""]
    return lines


def scoring_lines(scoring: dict[str, Any]) -> list[str]:
    if "available" in scoring:  # the backends package itself was not importable
        rows = [["-", "-", scoring["note"]]]
    else:
        rows = [[k, fmt(v.get("backend")), fmt(v.get("per_s")) if v.get("available") else fmt(v.get("note"))]
                for k, v in scoring.items()]
    return ["## Scoring throughput", "", *table(["items", "backend", "per second"], rows), ""]


def write_markdown(result: dict[str, Any], path: Path) -> None:
    lines = [*header(result), "## Cases", "", *case_rows(result["cases"]), ""]
    stages = stage_rows(result["cases"])
    if stages:
        lines += ["## Planning and reflection stages (last repeat)", "", *stages, ""]
    lines += ["## Comparisons (measured side by side in this run)", "", *comparison_rows(result["comparisons"]), ""]
    bound = (result["comparisons"].get("image_only") or {}).get("prompt_cache")
    if bound:
        lines += [(f"Prompt cache for images: {bound['note']}; it would save "
                   f"{fmt(bound.get('would_save_fraction'))} of the floor."), ""]
    if result.get("harness"):
        lines += harness_lines(result["harness"])
    if result.get("scoring"):
        lines += scoring_lines(result["scoring"])
    path.write_text("\n".join(lines))
