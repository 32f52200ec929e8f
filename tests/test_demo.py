"""The demo end to end: every task and variant on the tiny Lavida-O, reports with every section."""
from __future__ import annotations

import json
from pathlib import Path

from lavida_bench.demo import run_demo
BENCHMARKS = {"geneval", "dpg_bench", "fid30k", "imgedit", "refcoco", "mmmu", "chartqa"}


def test_demo_runs_everything_and_reports_every_section(tmp_path: Path) -> None:
    outcome = run_demo(tmp_path)
    assert outcome.errors == 0
    run = tmp_path / "lavida_o"
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == BENCHMARKS
    for task, variants in metrics.items():
        for variant, summary in variants.items():
            counts = summary["counts"]
            assert counts["scored"] == counts["samples"] > 0, (task, variant, counts)
    report = (run / "report.md").read_text()
    for title in ("GenEval", "DPG-Bench", "FID-30k", "ImgEdit", "RefCOCO", "MMMU", "ChartQA",
                  "What planning and reflection buy and cost", "## Speed", "## Plots", "## Gallery"):
        assert title in report, title
    assert "Not meaningful" in report  # tiny random model + stand-in backends are labelled
    assert len(list((run / "report").rglob("*.png"))) >= 2
    speed = json.loads((run / "speed" / "speed.json").read_text())
    nfe = {c["case"]: c["nfe"] for c in speed["cases"]}
    assert nfe["ground1"] == 1 and nfe["ground4"] == 4 and nfe["generate@128"] == 64
