"""The demo end to end: every task and variant on the tiny Lavida-O, reports with every section."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lavida_bench.demo import run_demo
from lavida_bench.reports import leaderboard
BENCHMARKS = {"geneval", "dpg_bench", "fid30k", "imgedit", "refcoco", "mmmu", "chartqa"}


def test_demo_runs_everything_and_reports_every_section(tmp_path: Path) -> None:
    outcome = run_demo(tmp_path)
    assert outcome.errors == 0
    run = tmp_path / "lavida_o"
    doc = json.loads((run / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))
    metrics = doc["tasks"]
    assert set(metrics) == BENCHMARKS
    for task, variants in metrics.items():
        for variant, summary in variants.items():
            counts = summary["counts"]
            assert counts["scored"] == counts["samples"] > 0, (task, variant, counts)
    report = (run / "report.md").read_text()
    for title in ("GenEval", "DPG-Bench", "FID-30k", "ImgEdit", "RefCOCO", "MMMU", "ChartQA",
                  "What planning and reflection buy and cost", "## Speed", "## Plots", "## Gallery"):
        assert title in report, title
    assert "Not comparable with the paper" in report  # tiny random model + stand-in backends are labelled
    trust = doc["trust"]
    assert trust["comparable_with_paper"] is False
    assert "not the released model size (tiny or custom configuration)" in trust["reasons"]
    assert "geneval: stand-in detector (shapes world only)" in trust["reasons"]
    board = leaderboard([run])  # the demo run is ranked nowhere, unless asked, and then marked
    assert all("lavida_o" not in row[1] for t in board.tables for row in t.rows)
    marked = leaderboard([run], include_unofficial=True)
    assert any(row[1] == "lavida_o [not comparable]" for t in marked.tables for row in t.rows)
    assert len(list((run / "report").rglob("*.png"))) >= 2
    speed = json.loads((run / "speed" / "speed.json").read_text())
    nfe = {c["case"]: c["nfe"] for c in speed["cases"]}
    assert nfe["ground1"] == 1 and nfe["ground4"] == 4 and nfe["generate@128"] == 64
