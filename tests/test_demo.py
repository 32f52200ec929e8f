"""The demo end to end: every task and variant on the shipped world model, the regression demo's
two comparisons, reports with every section and the world's banner."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lavida_bench.api import MIN_N
from lavida_bench.demo import FIXTURE_SIZES, GATE, run_demo
from lavida_bench.reports import leaderboard

BENCHMARKS = {"geneval", "dpg_bench", "fid30k", "imgedit", "refcoco", "mmmu", "chartqa"}
WORLD_BANNER = "synthetic world, micro model: comparable with nothing published"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("demo")
    outcome, checks = run_demo(root)
    return root, outcome, checks


def test_the_demo_runs_every_benchmark_without_errors(demo) -> None:
    root, outcome, _ = demo
    assert outcome.errors == 0
    doc = json.loads((root / "lavida_o" / "metrics.json").read_text(),
                     parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))
    assert set(doc["tasks"]) == BENCHMARKS
    for task, variants in doc["tasks"].items():
        for variant, summary in variants.items():
            counts = summary["counts"]
            assert counts["scored"] == counts["samples"] > 0, (task, variant, counts)
    assert list(doc["tasks"]["geneval"]) == ["plain", "plan", "plan_reflect"]


def test_the_report_is_complete_and_says_what_the_numbers_are(demo) -> None:
    root, _, _ = demo
    run = root / "lavida_o"
    report = (run / "report.md").read_text()
    for title in ("GenEval", "DPG-Bench", "FID-30k", "ImgEdit", "RefCOCO", "MMMU", "ChartQA",
                  "What planning and reflection buy and cost", "## Speed", "## Plots", "## Gallery",
                  "### ImgEdit: what planning and reflection buy and cost"):
        assert title in report, title
    assert WORLD_BANNER.capitalize() in report
    assert "| metric | plain | + planning | + planning + reflection |\n" in report  # no paper column beside world numbers
    trust = json.loads((run / "metrics.json").read_text())["trust"]
    assert trust["comparable_with_paper"] is False and trust["world"] == "synthetic world"
    assert WORLD_BANNER in trust["reasons"]
    board = leaderboard([run])  # ranked nowhere unless asked, and then marked
    assert all("lavida_o" not in row[1] for t in board.tables for row in t.rows)
    assert len(list((run / "report").rglob("*.png"))) >= 2
    speed = json.loads((run / "speed" / "speed.json").read_text())
    nfe = {c["case"]: c["nfe"] for c in speed["cases"]}
    assert nfe["ground1"] == 1 and nfe["ground4"] == 4 and nfe["generate@128"] == 64


def test_the_regression_demo_catches_the_under_trained_weights_only(demo) -> None:
    root, _, checks = demo
    early, reseeded = checks
    assert (early.exit_code, reseeded.exit_code) == (1, 0), [c.summary for c in checks]
    regressed = {line.split()[1] for line in early.summary if line.startswith("regression: ")}
    # both gate benchmarks are large enough to gate (api.MIN_N), and both regress
    assert {"geneval:plain:overall", "refcoco:steps1:acc"} <= regressed, early.summary
    assert json.loads((root / "regression" / "compare_early" / "compare.json").read_text())["exit_code"] == 1


def test_the_demo_preset_draws_as_the_micro_model_was_measured() -> None:
    """The preset's image variants use the world's drawing options and its text decoding
    (world/micro.py), so what the demo reports is what docs/benchmarks.md measured."""
    from lavida_bench.config import load_config
    from lavida_bench.world.micro import PREFIX_LM, edit_options, image_options

    variants = load_config("demo").variants
    measured = {"plain": image_options(), "plan": image_options(plan=True),
                "plan_reflect": image_options(plan=True, reflect_rounds=2), "plain_edit": edit_options(),
                "plan_edit": edit_options(plan=True)}
    for name, expected in measured.items():
        assert replace(variants[name].to_options(), resolution=expected.resolution) == expected, name
    assert load_config("demo").model.resolution == image_options().resolution
    assert load_config("demo").model.prefix_lm is PREFIX_LM


def test_every_gate_benchmark_has_enough_samples_to_gate() -> None:
    """A gate benchmark under api.MIN_N samples is only ever "too few samples": it cannot gate."""
    assert all(FIXTURE_SIZES[name] >= MIN_N for name in GATE), {name: FIXTURE_SIZES[name] for name in GATE}
