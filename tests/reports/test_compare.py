"""Regression comparison: planted regressions are caught and named, reseeded runs of the same
checkpoint are not flagged, incomparable runs are refused with their differences listed."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from lavida_bench.reports import compare, exit_code
from lavida_bench.reports.compare import BETTER, SAME, WORSE
from lavida_bench.reports.load import load_run
from lavida_bench.reports.paired import Estimator, estimator_for, paired_difference

from tests.reports.builder import write_run

N_PER_SPLIT = 100
SPLITS = ("refcoco/val", "refcoco/testA")


def difficulties(seed: int = 1) -> list[float]:
    """Per-sample probability of a correct answer: most samples are easy or hard, as in real
    benchmarks, so a reseeded run changes only a few answers."""
    rng = random.Random(seed)
    return [rng.choice([0.02, 0.05, 0.95, 0.98, 0.98, 0.5]) for _ in range(N_PER_SPLIT * len(SPLITS))]


def refcoco_rows(correct: list[float], prompts: dict[int, str] | None = None) -> list[dict[str, Any]]:
    return [{"id": f"s{i:03d}", "prompt": (prompts or {}).get(i, f"expr {i}"),
             "scores": {"split": SPLITS[i // N_PER_SPLIT], "correct": c, "parse_failure": 0}}
            for i, c in enumerate(correct)]


def draw(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [float(rng.random() < p) for p in difficulties()]


def grounding_run(root: Path, correct: list[float], seed: int = 0, **kw: Any) -> Path:
    fid = {"plain": [{"id": f"f{i}", "scores": {"features": "AAAA"}} for i in range(120)]}  # FID min_n: 100
    return write_run(root, {"refcoco": {"steps1": refcoco_rows(correct, kw.pop("prompts", None))},
                            "fid30k": fid}, seed=seed, **kw)


def test_planted_regression_exits_nonzero_and_is_named(tmp_path: Path):
    base = draw(seed=10)
    new = list(base)
    for i in range(N_PER_SPLIT, 2 * N_PER_SPLIT, 2):  # testA: every other sample now wrong
        new[i] = 0.0
    result = compare(grounding_run(tmp_path / "a", base), grounding_run(tmp_path / "b", new, seed=1))
    verdicts = {v.key: v for v in result.verdicts}
    testa = verdicts["refcoco:steps1:acc/refcoco/testA"]
    assert testa.verdict == WORSE and testa.method == "paired" and testa.n == N_PER_SPLIT
    assert testa.delta == pytest.approx(-sum(base[i] for i in range(100, 200, 2)) / N_PER_SPLIT)
    assert verdicts["refcoco:steps1:acc/refcoco/val"].verdict == SAME  # untouched split
    assert verdicts["refcoco:steps1:acc/refcoco/val"].delta == 0.0
    assert result.exit_code() == exit_code(result) == 1
    assert "refcoco:steps1:acc/refcoco/testA" in [v.key for v in result.regressions]
    assert "refcoco:steps1:acc/refcoco/testA" in result.to_markdown()
    assert "WORSE" in result.to_markdown()


def test_regression_outside_the_gate_does_not_fail(tmp_path: Path):
    base = draw(seed=10)
    new = [0.0 if i >= N_PER_SPLIT else c for i, c in enumerate(base)]
    result = compare(grounding_run(tmp_path / "a", base), grounding_run(tmp_path / "b", new),
                     gated=["refcoco:*:acc/refcoco/val"])
    assert any(v.verdict == WORSE for v in result.verdicts)
    assert result.regressions == [] and result.exit_code() == 0
    # a tolerance larger than the drop turns the verdict into "no detectable change"
    lenient = compare(grounding_run(tmp_path / "c", base), grounding_run(tmp_path / "d", new),
                      tolerance={"*:acc/refcoco/testA": 2.0})
    assert {v.metric: v.verdict for v in lenient.verdicts}["acc/refcoco/testA"] == SAME


def test_same_checkpoint_different_seed_is_no_detectable_change(tmp_path: Path):
    result = compare(grounding_run(tmp_path / "a", draw(seed=10), seed=0),
                     grounding_run(tmp_path / "b", draw(seed=11), seed=1))
    assert not result.refused, result.differences
    assert {v.metric for v in result.verdicts} >= {"acc", "acc/refcoco/val", "acc/refcoco/testA", "fid"}
    assert all(v.verdict == SAME for v in result.verdicts), [(v.key, v.delta, v.ci_low, v.ci_high)
                                                             for v in result.verdicts]
    assert result.exit_code() == 0


def test_improvement_is_better(tmp_path: Path):
    base = draw(seed=10)
    new = [1.0] * len(base)
    result = compare(grounding_run(tmp_path / "a", base), grounding_run(tmp_path / "b", new))
    assert {v.metric: v.verdict for v in result.verdicts}["acc"] == BETTER
    assert result.exit_code() == 0


def test_fid_is_compared_unpaired_and_lower_is_better(tmp_path: Path):
    from tests.reports.builder import agg_fid

    base = grounding_run(tmp_path / "a", draw(10))
    worse = grounding_run(tmp_path / "b", draw(10), aggregators={"fid30k": agg_fid((20.0, 19.0, 21.0))})
    better = grounding_run(tmp_path / "c", draw(10), aggregators={"fid30k": agg_fid((5.0, 4.0, 6.0))})
    fid_worse = {v.metric: v for v in compare(base, worse).verdicts}["fid"]
    assert fid_worse.method == "unpaired" and fid_worse.verdict == WORSE
    assert fid_worse.delta == pytest.approx(7.5)
    # half-widths 1.5 and 1.0 combine in quadrature: sqrt(1.5^2 + 1^2)
    assert fid_worse.ci_low == pytest.approx(7.5 - 1.8027756, abs=1e-6)
    assert {v.metric: v.verdict for v in compare(base, better).verdicts}["fid"] == BETTER


def test_incomparable_runs_are_refused_with_every_difference(tmp_path: Path):
    base = grounding_run(tmp_path / "a", draw(10))

    def change(m: dict[str, Any]) -> None:
        next(t for t in m["tasks"] if t["name"] == "refcoco")["version"] = "2"
        next(t for t in m["tasks"] if t["name"] == "refcoco")["options"] = {"splits": ["refcoco/val"]}
        m["backends"]["detector"]["sha256"] = "other-weights"
        m["config"]["variants"]["steps1"]["steps"] = 2
        m["config"]["model"]["dtype"] = "bfloat16"

    new = grounding_run(tmp_path / "b", draw(10), seed=1, manifest_edit=change, prompts={3: "another prompt"})
    result = compare(base, new)
    assert result.refused and result.verdicts == [] and result.exit_code() == 2
    text = "\n".join(result.differences)
    assert "task refcoco: version '1' (base) vs '2' (new)" in text
    assert "task refcoco: options.splits" in text
    assert "evaluator fingerprints.detector.sha256: 'detector1' (base) vs 'other-weights' (new)" in text
    assert "config variants.steps1.steps: 1 (base) vs 2 (new)" in text
    assert "config.model.dtype: 'float32' (base) vs 'bfloat16' (new)" in text
    assert "refcoco/steps1: prompts differ for 1 shared sample(s), e.g. s003" in text
    assert len(result.differences) == 6
    assert "REFUSED (exit 2)" in result.to_markdown() and '"refused": true' in result.to_json()


def test_what_may_differ_does_not_refuse(tmp_path: Path):
    """Seed, checkpoint, output folder, device, data and weight paths (contents equal)."""
    result = compare(grounding_run(tmp_path / "a", draw(10), seed=0), grounding_run(tmp_path / "b", draw(10), seed=5))
    assert result.differences == []


def independent_paired_bootstrap(d: list[float], n_boot: int = 4000, seed: int = 3) -> tuple[float, float]:
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(d) for _ in d) / len(d) for _ in range(n_boot))
    return means[int(0.025 * n_boot)], means[int(0.975 * n_boot) - 1]


def test_paired_interval_agrees_with_an_independent_bootstrap(tmp_path: Path):
    base, new = draw(10), draw(12)
    result = compare(grounding_run(tmp_path / "a", base), grounding_run(tmp_path / "b", new))
    overall = {v.metric: v for v in result.verdicts}["acc"]
    diffs = [n - b for b, n in zip(base, new)]
    lo, hi = independent_paired_bootstrap(diffs)
    assert overall.delta == pytest.approx(sum(diffs) / len(diffs))
    assert abs(overall.ci_low - lo) < 0.015 and abs(overall.ci_high - hi) < 0.015
    assert overall.n == 200


def test_estimator_is_the_declared_decomposition(tmp_path: Path):
    """metrics.json says how each metric decomposes into per-sample scores (no guessing)."""
    from tests.reports.golden import write_golden

    run = load_run(write_golden(tmp_path / "g"))
    scores = run.ok_scores("geneval", "plain")
    overall = estimator_for(run.metric("geneval", "plain", "overall"))
    assert overall == Estimator("correct", macro="tag")  # micro would give 19/30, not 0.55
    assert estimator_for(run.metric("geneval", "plain", "position")) == Estimator("correct", where=(("tag", "position"),))
    ref = load_run(grounding_run(tmp_path / "r", draw(10)))
    split = estimator_for(ref.metric("refcoco", "steps1", "acc/refcoco/testA"))
    assert split == Estimator("correct", where=(("split", "refcoco/testA"),))
    assert estimator_for(ref.metric("fid30k", "plain", "fid")) is None  # a corpus statistic
    # paired macro difference = difference of the macro means: plan 0.80 vs plain 0.55
    d = paired_difference(overall, scores, run.ok_scores("geneval", "plan"))
    assert (d.base, d.new, d.delta, d.n) == (pytest.approx(0.55), pytest.approx(0.8), pytest.approx(0.25), 30)


def test_runs_that_agree_on_every_sample_get_an_exact_interval_not_zero_width():
    """Two runs with the same 0/1 score on each of 24 samples: the bootstrap says [0, 0]. The
    difference is at most the rate at which they disagree, and no disagreement in 24 bounds that
    rate by 1 - 0.025^(1/24) = 0.142 (Clopper-Pearson); a macro over two groups of 12 splits the
    tail: 1 - 0.0125^(1/12) = 0.306."""
    scores = {f"s{i}": {"correct": float(i % 3 == 0), "tag": "ab"[i % 2]} for i in range(24)}
    d = paired_difference(Estimator("correct"), scores, scores)
    assert (d.delta, d.n) == (0.0, 24)
    assert d.ci_high == pytest.approx(1 - 0.025 ** (1 / 24)) == -d.ci_low
    macro = paired_difference(Estimator("correct", macro="tag", factor=100), scores, scores)
    assert macro.ci_high == pytest.approx(100 * (1 - 0.0125 ** (1 / 12))) == -macro.ci_low
    graded = {k: {**v, "correct": 0.5} for k, v in scores.items()}  # not 0/1: the bootstrap's [0, 0] stands
    assert paired_difference(Estimator("correct"), graded, graded).ci_high == 0.0
    one_differs = {**scores, "s1": {**scores["s1"], "correct": 1.0}}
    assert paired_difference(Estimator("correct"), scores, one_differs).ci_low == 0.0  # the bootstrap's


def test_write_comparison_files(tmp_path: Path):
    from lavida_bench.reports import write_comparison

    base = draw(10)
    new = [0.0 if i >= N_PER_SPLIT else c for i, c in enumerate(base)]
    result = compare(grounding_run(tmp_path / "a", base), grounding_run(tmp_path / "b", new))
    md, js, page = write_comparison(result, tmp_path / "out")
    assert "FAIL (exit 1): 2 gated regression(s)" in md.read_text()
    data = json.loads(js.read_text())
    assert data["exit_code"] == 1 and "refcoco:steps1:acc/refcoco/testA" in data["regressions"]
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "WORSE" in text and "base run:" in text
    assert text.count("<summary>model</summary>") == 2  # both manifests, as compared
