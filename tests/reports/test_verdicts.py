"""Verdicts that know what each metric means (issue 12): per-metric direction, units, tolerance
and minimum n in compare; incomplete NEW runs and typo'd gates fail; leaderboards rank only
runs comparable with the paper. Every run folder here is built by hand."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lavida_bench.api import DataError, UsageError
from lavida_bench.cli import main
from lavida_bench.reports import compare, leaderboard
from lavida_bench.reports.compare import SAME, TOO_FEW, WORSE
from lavida_bench.tasks import TASKS
from lavida_bench.tasks.base import aggregate_declared
from tests.reports.builder import write_run

N = 60


def real(task: str):
    """The task's own declared aggregation (so latency and rates are there as in a real run)."""
    return lambda scores: aggregate_declared(TASKS.get(task).metrics, scores)


def refcoco_rows(correct: list[float], latency: float = 0.1, failures: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"s{i:03d}", "scores": {"split": "refcoco/val", "correct": c, "iou": c, "steps": 1,
                                           "latency_s": latency * (1 + i % 3), "parse_failure": int(i < failures)}}
            for i, c in enumerate(correct)]


def grounding(root: Path, correct: list[float], seed: int = 0, **kw: Any) -> Path:
    rows = refcoco_rows(correct, kw.pop("latency", 0.1), kw.pop("failures", 0))
    extra = kw.pop("extra", {})
    return write_run(root, {"refcoco": {"steps1": rows}, **extra}, seed=seed,
                     aggregators={"refcoco": real("refcoco")}, **kw)


CORRECT = [float(i % 3 != 0) for i in range(N)]


def test_identical_outputs_pass_whatever_their_speed(tmp_path: Path):
    """A faster (or slower) run with the same answers is not a regression: latency is diagnostic."""
    result = compare(grounding(tmp_path / "a", CORRECT), grounding(tmp_path / "b", CORRECT, seed=1, latency=0.01))
    latency = {v.metric: v for v in result.verdicts}["latency_s"]
    assert latency.direction == "diagnostic" and latency.verdict == "changed" and not latency.gated
    assert latency.scale == "seconds"
    assert result.exit_code() == 0, result.summary()


def test_a_rise_in_parse_failures_is_worse(tmp_path: Path):
    result = compare(grounding(tmp_path / "a", CORRECT), grounding(tmp_path / "b", CORRECT, seed=1, failures=40))
    rate = {v.metric: v for v in result.verdicts}["parse_failure_rate"]
    assert rate.direction == "lower" and rate.delta > 0 and rate.verdict == WORSE and rate.gated
    assert result.exit_code() == 1
    assert "regression: refcoco:steps1:parse_failure_rate" in "\n".join(result.summary())


def test_new_without_scores_exits_1(tmp_path: Path):
    base = grounding(tmp_path / "a", CORRECT)
    new = grounding(tmp_path / "b", CORRECT, seed=1)
    (new / "metrics.json").unlink()
    result = compare(base, new)
    assert result.exit_code() == 1 and result.problems == ["NEW has no scores for refcoco/steps1"]


def test_new_missing_a_task_or_samples_exits_1(tmp_path: Path):
    geneval = {"geneval": {"plain": [{"id": f"g{i}", "scores": {"tag": "position", "correct": 1.0}}
                                     for i in range(N)]}}
    base = grounding(tmp_path / "a", CORRECT, extra=geneval)
    result = compare(base, grounding(tmp_path / "b", CORRECT, seed=1))
    assert result.exit_code() == 1 and "NEW lacks task geneval" in result.problems
    fewer = grounding(tmp_path / "c", CORRECT[:50], seed=1, extra=geneval)
    result = compare(base, fewer)
    assert result.exit_code() == 1
    assert result.problems == ["NEW lacks scores for 10 sample(s) of refcoco/steps1 that BASE scored, e.g. s050, "
                               "s051, s052"]


def test_a_null_gated_headline_exits_1(tmp_path: Path):
    """ImgEdit with every judge reply unusable: its overall is null, with a reason."""
    rows = [{"id": f"e{i}", "scores": {"edit_type": "add", "status": "ok", "score": 4.0}} for i in range(N)]
    nulls = [{"id": f"e{i}", "scores": {"edit_type": "add", "status": "unparseable", "score": None}} for i in range(N)]
    imgedit = lambda scores: TASKS.get("imgedit")(None).aggregate(scores)
    base = write_run(tmp_path / "a", {"imgedit": {"plain": rows}}, aggregators={"imgedit": imgedit})
    new = write_run(tmp_path / "b", {"imgedit": {"plain": nulls}}, seed=1, aggregators={"imgedit": imgedit})
    stored = json.loads((new / "metrics.json").read_text())["tasks"]["imgedit"]["plain"]["metrics"]["overall"]
    assert stored["value"] is None and stored["reason"] == "no samples to aggregate"
    result = compare(base, new)
    assert result.exit_code() == 1
    assert result.problems == ["NEW headline imgedit:plain:overall is null (no samples to aggregate)"]
    assert compare(base, new, gated=["imgedit:*:unparseable_rate"]).problems == []  # the headline is not gated


def test_a_gate_that_matches_nothing_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture):
    a, b = grounding(tmp_path / "a", CORRECT), grounding(tmp_path / "b", CORRECT, seed=1)
    for pattern in ("refcoco:*:IoU", "refcoco", "nosuch:*:x"):
        with pytest.raises(UsageError, match="matches no metric"):
            compare(a, b, gated=[pattern])
        assert main(["compare", str(a), str(b), "--gate", pattern]) == 2
    with pytest.raises(UsageError, match="only diagnostic metrics.*--direction"):
        compare(a, b, gated=["refcoco:*:latency_s"])
    slower = grounding(tmp_path / "c", CORRECT, seed=1, latency=1.0)
    gated = compare(a, slower, gated=["refcoco:*:latency_s"], direction={"*:latency_s": "lower"})
    assert gated.exit_code() == 1  # gating a timing is possible, by saying which way is better
    assert main(["compare", str(a), str(b), "--tolerance", "0.5"]) == 2  # one number cannot fit every unit
    assert "PATTERN=VALUE" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--tolerance", "refcoco:*:acc=0.02", "--gate", "refcoco:*:acc"]) == 0


def test_tolerance_is_per_metric_in_its_own_units(tmp_path: Path):
    worse = [0.0 if i < 12 else c for i, c in enumerate(CORRECT)]  # about -0.13 on a 0-1 scale
    a, b = grounding(tmp_path / "a", CORRECT), grounding(tmp_path / "b", worse, seed=1)
    default = {v.metric: v for v in compare(a, b).verdicts}["acc"]
    assert default.tolerance == 0.005 and default.verdict == WORSE  # half a point on 0-1
    lenient = {v.metric: v for v in compare(a, b, tolerance={"*:acc": 0.5}).verdicts}["acc"]
    assert lenient.tolerance == 0.5 and lenient.verdict == SAME


def test_too_few_samples_gives_no_verdict(tmp_path: Path):
    a = grounding(tmp_path / "a", [1.0] * 5)
    b = grounding(tmp_path / "b", [0.0] * 5, seed=1)
    result = compare(a, b)
    acc = {v.metric: v for v in result.verdicts}["acc"]
    assert acc.n == 5 and acc.min_n == 30 and acc.verdict == TOO_FEW
    assert result.regressions == [] and result.exit_code() == 0


def test_compare_html_leads_with_the_verdict(tmp_path: Path):
    from lavida_bench.reports import write_comparison

    result = compare(grounding(tmp_path / "a", CORRECT), grounding(tmp_path / "b", CORRECT, seed=1, failures=40))
    page = write_comparison(result, tmp_path / "out")[2].read_text()
    assert page.index("id='verdict'") < page.index("<table")
    assert "FAIL (exit 1)" in page and "<td class='worse'>parse_failure_rate</td>" in page


def unofficial(manifest: dict[str, Any]) -> None:
    manifest["backends"]["vqa"] = {"name": "standin", "standin": True, "official": False, "official_choice": "mplug"}
    manifest["model"]["config"] = {"d_model": 64}


DPG = {"dpg_bench": {"plain": [{"id": f"d{i}", "scores": {"score": 1.0, "category": "entity"}} for i in range(N)]}}


def test_leaderboard_ranks_only_runs_comparable_with_the_paper(tmp_path: Path, capsys: pytest.CaptureFixture):
    official = write_run(tmp_path / "official", DPG)
    toy = write_run(tmp_path / "toy", DPG, seed=1, manifest_edit=unofficial)
    board = leaderboard([official, toy], include_published=True)
    dpg = next(t for t in board.tables if t.key == "leaderboard_dpg_bench")
    assert "toy" not in [r[1] for r in dpg.rows] and "official" in [r[1] for r in dpg.rows]
    assert any(n.startswith("toy left out of dpg_bench (not comparable with the paper: not the released model size")
               and "stand-in vqa" in n for n in board.notes)
    with pytest.raises(DataError, match="evaluators.vqa.name: 'mplug' \\(base\\) vs 'standin'"):
        leaderboard([official, toy], include_unofficial=True)  # included, it would be measured differently
    tiny = write_run(tmp_path / "tiny", DPG, seed=2, manifest_edit=lambda m: m["model"].update(config={"d_model": 64}))
    marked = leaderboard([official, tiny], include_unofficial=True)
    names = [r[1] for r in next(t for t in marked.tables if t.key == "leaderboard_dpg_bench").rows]
    assert "tiny [not comparable]" in names and "official" in names
    assert main(["leaderboard", str(tiny)]) == 0 and "| tiny" not in capsys.readouterr().out
    assert main(["leaderboard", str(tiny), "--include-unofficial"]) == 0
    assert "| tiny [not comparable] |" in capsys.readouterr().out


def test_leaderboard_refuses_runs_that_measured_differently(tmp_path: Path):
    a = write_run(tmp_path / "a", DPG)

    def other_version(m: dict[str, Any]) -> None:
        m["tasks"][0]["version"] = "2"

    b = write_run(tmp_path / "b", DPG, seed=1, manifest_edit=other_version)
    with pytest.raises(DataError, match="dpg_bench: a vs b: task.version: '1' \\(base\\) vs '2' \\(new\\)"):
        leaderboard([a, b])


def test_leaderboard_never_stands_one_variant_in_for_another(tmp_path: Path):
    plan_only = {"dpg_bench": {"plan": DPG["dpg_bench"]["plain"]}}
    a = write_run(tmp_path / "a", DPG)
    b = write_run(tmp_path / "b", plan_only, seed=1)
    overall = leaderboard([a, b], include_published=False).tables[-1]
    assert [r[1] for r in overall.rows] == ["a"]
    assert any("not ranked overall" in n and "b" in n for n in overall.notes)


def test_a_checkpoints_provenance_reaches_the_trust_facts(tmp_path) -> None:
    """The provenance.json a checkpoint carries (random tiny weights, or the micro model of the
    synthetic world) is what the trust facts, headline and report banner say."""
    from lavida_bench.model.checkpoint import load_checkpoint
    from lavida_bench.model.tiny import make_tiny_checkpoint
    from lavida_bench.trust import further_reasons, headline, model_reasons, render, trust_facts

    ck = load_checkpoint(make_tiny_checkpoint(tmp_path / "tiny", seed=4))
    assert ck.provenance == {"weights": "random", "seed": 4}
    model = {"provenance": ck.provenance, "config": ck.config.summary()}
    assert model_reasons(model)[0] == "model with random weights"
    world = {"provenance": {"weights": "trained", "world": "synthetic world"}, "config": ck.config.summary()}
    facts = trust_facts({"model": world}, {"geneval": {}}, {})
    assert facts["world"] == "synthetic world" and not facts["comparable_with_paper"]
    assert headline(facts) == "Synthetic world, micro model: comparable with nothing published"
    assert "synthetic world, micro model: comparable with nothing published" in facts["reasons"]
    assert further_reasons(facts, facts["reasons"]) == ["not the released model size (tiny or custom configuration)"]
    assert render(facts).splitlines()[0] == "trust: Synthetic world, micro model: comparable with nothing published:"
    assert headline(trust_facts({"model": model}, {"geneval": {}}, {})) == "Not comparable with the paper's numbers"


def test_text_decoding_without_the_prefix_cache_is_a_departure_from_the_papers_protocol() -> None:
    from lavida_bench.model.config import LavidaConfig
    from lavida_bench.trust import model_reasons

    released = {"provenance": {}, "config": LavidaConfig.official().summary()}
    assert model_reasons({**released, "prefix_lm": True}) == []
    assert model_reasons({**released, "prefix_lm": False}) == [
        "text decoded without the prefix cache (prefix_lm=False; the paper's runs use True)"]
