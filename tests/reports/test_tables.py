"""Golden tables: a hand-built run folder gives exactly the expected paper-layout tables."""
from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pytest

from lavida_bench.api import DataError
from lavida_bench.reports.costs import base_variant, cost_tables
from lavida_bench.reports.load import load_run
from lavida_bench.reports.published import parse_published, published_entries
from lavida_bench.reports.table import latex_escape, to_csv, to_latex, to_markdown
from lavida_bench.reports.tables import benchmark_tables
from tests.reports.golden import write_golden


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    return load_run(write_golden(tmp_path_factory.mktemp("golden") / "run"))


@pytest.fixture(scope="module")
def tables(run):
    return {t.key: t for t in benchmark_tables(run)}


def ci(run, task: str, variant: str, metric: str, scale: float, digits: int) -> str:
    """The stored interval as the table must print it."""
    m = run.metric(task, variant, metric)
    return f"[{m['ci_low'] * scale:.{digits}f}, {m['ci_high'] * scale:.{digits}f}]"


def test_every_benchmark_has_a_table_in_paper_order(tables):
    assert [k for k in tables if not k.endswith("_diagnostics")] == ["geneval", "dpg_bench", "fid30k", "imgedit",
                                                                     "refcoco", "mmmu", "chartqa"]


def test_geneval_table_exact(run, tables):
    t = tables["geneval"]
    assert t.header == ["metric", "plain", "paper", "Δ", "+ planning", "paper", "Δ",
                        "+ planning + reflection", "paper", "Δ"]
    c = lambda v, m: ci(run, "geneval", v, m, 1, 2)
    assert t.rows == [
        ["Single Obj.", f"0.80 {c('plain', 'single_object')} n=20", "–", "–",
         f"0.90 {c('plan', 'single_object')} n=20", "–", "–", f"1.00 {c('plan_reflect', 'single_object')} n=20", "–", "–"],
        ["Position", f"0.30 {c('plain', 'position')} n=10", "–", "–",
         f"0.70 {c('plan', 'position')} n=10", "–", "–", f"0.80 {c('plan_reflect', 'position')} n=10", "–", "–"],
        # macro overall: (0.8 + 0.3) / 2, (0.9 + 0.7) / 2, (1.0 + 0.8) / 2 against 0.77 / 0.85 / 0.89
        ["Overall", f"0.55 {c('plain', 'overall')} n=30", "0.77", "-0.22 (worse)",
         f"0.80 {c('plan', 'overall')} n=30", "0.85", "-0.05 (worse)", f"0.90 {c('plan_reflect', 'overall')} n=30",
         "0.89", "+0.01 (better)"],
        ["samples scored / total (errors)", "30 / 30 (0 errors)", "", "", "30 / 30 (0 errors)", "", "",
         "30 / 30 (0 errors)", "", ""],
    ]


def test_refcoco_table_in_percent_with_paper_numbers(tables):
    t = tables["refcoco"]
    assert t.header == ["metric", "1 step", "paper", "Δ", "4 steps", "paper", "Δ"]
    values = [[row[0]] + [cell.split(" [")[0] for cell in row[1:]] for row in t.rows[:-1]]
    assert values == [["RefCOCO val", "90.0", "91.9", "-1.9 (worse)", "100.0", "92.3", "+7.7 (better)"],
                      ["RefCOCOg test", "80.0", "89.8", "-9.8 (worse)", "100.0", "90.6", "+9.4 (better)"],
                      ["all splits", "86.7", "–", "–", "100.0", "–", "–"]]


def test_other_benchmarks_headline_rows(tables):
    def row(key: str, label: str) -> list[str]:
        return next(r for r in tables[key].rows if r[0] == label)

    assert row("dpg_bench", "Overall")[1].startswith("62.5 [") and row("dpg_bench", "Overall")[2:] == ["81.8", "-19.3 (worse)"]
    assert row("dpg_bench", "Entity")[1].startswith("75.0 [")
    # FID above the paper's is worse (lower is better): the sign says up, the word says worse
    assert row("fid30k", "FID") == ["FID", "12.50 [11.00, 14.00] n=4", "6.68", "+5.82 (worse)"]
    assert "units: FID; lower is better" in tables["fid30k"].notes
    assert tables["fid30k"].classes[0][-1] == "worse"
    assert row("imgedit", "Overall")[1:] == [row("imgedit", "Overall")[1], "3.80", "+0.20 (better)"]
    assert row("imgedit", "Overall")[1].startswith("4.00 [") and row("imgedit", "Remove")[2:] == ["4.05", "+0.45 (better)"]
    assert [r[0] for r in tables["imgedit"].rows] == ["Add", "Remove", "Overall", "samples scored / total (errors)"]
    assert row("mmmu", "Overall")[1].startswith("75.0 [") and row("mmmu", "Overall")[2:] == ["45.1", "+29.9 (better)"]
    assert row("chartqa", "Overall")[2:] == ["80.0", "-5.0 (worse)"]
    assert [r[0] for r in tables["chartqa"].rows][:3] == ["Human", "Augmented", "Overall"]


def independent_bootstrap(groups: list[list[float]], n_boot: int = 4000, seed: int = 7) -> tuple[float, float]:
    """Percentile bootstrap of the unweighted mean of group means, resampling within groups,
    written with the standard library only."""
    rng = random.Random(seed)
    stats = sorted(sum(sum(rng.choice(g) for _ in g) / len(g) for g in groups) / len(groups)
                   for _ in range(n_boot))
    return stats[int(0.025 * n_boot)], stats[int(0.975 * n_boot) - 1]


@pytest.mark.parametrize("variant,metric,groups", [
    ("plain", "single_object", [[1.0] * 16 + [0.0] * 4]),
    ("plain", "position", [[1.0] * 3 + [0.0] * 7]),
    ("plan", "overall", [[1.0] * 18 + [0.0] * 2, [1.0] * 7 + [0.0] * 3]),
])
def test_table_intervals_agree_with_an_independent_bootstrap(run, tables, variant, metric, groups):
    record = next(r for r in tables["geneval"].records if r["variant"] == variant and r["metric"] == metric)
    lo, hi = independent_bootstrap(groups)
    # percentile bootstraps of 10-20 binary samples move in steps of 1/20 - 1/10 per group
    step = max(1 / len(g) for g in groups) / len(groups)
    assert abs(record["ci_low"] - lo) <= step + 1e-9
    assert abs(record["ci_high"] - hi) <= step + 1e-9
    assert record["n"] == sum(len(g) for g in groups)
    assert record["ci_low"] <= record["value"] <= record["ci_high"]


def test_machine_forms_carry_values_cis_counts_and_sources(tables):
    t = tables["geneval"]
    rows = list(csv.DictReader(io.StringIO(to_csv(t))))
    overall = next(r for r in rows if r["variant"] == "plan" and r["metric"] == "overall")
    assert float(overall["value"]) == pytest.approx(0.8)
    assert int(overall["n"]) == 30
    assert float(overall["published"]) == 0.85
    assert float(overall["diff"]) == pytest.approx(-0.05)
    assert overall["published_source"] == "Lavida-O paper (Li et al., arXiv 2509.19244), GenEval results table"
    single = next(r for r in rows if r["variant"] == "plain" and r["metric"] == "single_object")
    assert single["published"] == "" and single["diff"] == ""
    data = json.loads(json.dumps(t.to_json()))
    assert data["rows"] == t.rows and len(data["records"]) == 9


def test_markdown_and_latex_render_every_cell(tables):
    t = tables["refcoco"]
    md = to_markdown(t)
    assert md.splitlines()[2] == "| metric | 1 step | paper | Δ | 4 steps | paper | Δ |"
    assert "| RefCOCO val | 90.0 [" in md
    tex = to_latex(t)
    assert r"\begin{tabular}{lrrrrrr}" in tex
    assert r"metric & 1 step & paper & $\Delta$ & 4 steps & paper & $\Delta$ \\" in tex
    assert "RefCOCO val & 90.0 [" in tex
    assert latex_escape("acc_50% & more") == r"acc\_50\% \& more"


def test_planning_cost_table_from_traces(run):
    tables = {t.key: t for t in cost_tables(run)}
    assert list(tables) == ["cost_geneval"]  # the only generation benchmark with plain + another variant
    recs = {r["variant"]: r for r in tables["cost_geneval"].records}
    assert recs["plain"]["latency_s"] == 1.0 and recs["plain"]["nfe"] == 64.0 and recs["plain"]["gain"] is None
    assert recs["plan"]["extra_s"] == pytest.approx(0.5) and recs["plan"]["extra_nfe"] == pytest.approx(16.0)
    assert recs["plan"]["gain"] == pytest.approx(0.25)  # 0.80 - 0.55, paired over 30 shared samples
    assert recs["plan"]["gain_n"] == 30
    assert recs["plan_reflect"]["gain"] == pytest.approx(0.35)
    assert recs["plan_reflect"]["extra_nfe"] == pytest.approx(90.0) and recs["plan_reflect"]["rounds"] == 2.0
    assert recs["plan_reflect"]["stages"] == {"plan": {"seconds": 0.5, "nfe": 16.0},
                                              "draw": {"seconds": 2.0, "nfe": 128.0},
                                              "judge": {"seconds": 0.5, "nfe": 10.0}}
    assert recs["plan"]["gain_ci_low"] > 0  # planning helps on every sample it changed


def test_the_base_of_the_cost_table_is_plain_or_the_only_unplanned_variant(run):
    """An editing run names its variants itself (the demo's `plain_edit`, `plan_edit`): the gains
    are measured against the one variant that neither plans nor reflects, read from the manifest."""
    from dataclasses import replace

    variants = {"plain_edit": {"plan": False, "reflect_rounds": 1}, "plan_edit": {"plan": True, "reflect_rounds": 1},
                "edit_reflect": {"plan": False, "reflect_rounds": 2}, "other_edit": {"plan": False}}
    named = replace(run, manifest={"config": {"variants": variants}})
    assert base_variant(run, ["plan", "plain", "plan_reflect"]) == "plain"
    assert base_variant(named, ["plan_edit", "plain_edit", "edit_reflect"]) == "plain_edit"
    assert base_variant(named, ["plan_edit", "plain_edit", "other_edit"]) is None  # two candidates: no table
    assert base_variant(named, ["plan_edit", "edit_reflect"]) is None


def test_bad_metrics_file_names_file_task_and_field(tmp_path: Path):
    root = write_golden(tmp_path / "run")
    metrics = json.loads((root / "metrics.json").read_text())
    del metrics["tasks"]["geneval"]["plan"]["metrics"]["overall"]["ci_low"]
    del metrics["tasks"]["geneval"]["plan"]["metrics"]["overall"]["direction"]
    (root / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(DataError, match=r"metrics.json: geneval/plan: metric 'overall': missing field\(s\) ci_low, direction"):
        load_run(root)
    metrics["tasks"]["geneval"]["plan"]["metrics"]["overall"].update(ci_low=float("nan"), direction="higher")
    (root / "metrics.json").write_text(json.dumps(metrics))  # Python writes NaN: not JSON
    with pytest.raises(DataError, match="metrics.json: not valid JSON.*NaN"):
        load_run(root)
    (root / "metrics.json").write_text(json.dumps(metrics["tasks"]).replace("NaN", "null"))  # the old format
    with pytest.raises(DataError, match="not a lavida-bench/metrics/2 document.*lavida-bench score"):
        load_run(root)
    (root / "metrics.json").write_text("{not json")
    with pytest.raises(DataError, match="metrics.json: not valid JSON"):
        load_run(root)


def test_published_numbers_each_have_a_described_source():
    entries = published_entries()
    assert len(entries) > 40
    lavida = {(p.benchmark, p.metric, p.variant): p.value for p in entries if p.model == "Lavida-O"}
    assert lavida[("geneval", "overall", "plan_reflect")] == 0.89  # arXiv 2509.19244, GenEval table
    assert lavida[("refcoco", "acc/refcoco/val", "steps4")] == 92.3  # arXiv 2509.19244, RefCOCO table
    with pytest.raises(DataError, match="entry 0: source 'blog' is not described"):
        parse_published({"sources": {}, "entries": [{"benchmark": "x", "metric": "m", "model": "M",
                                                     "variant": None, "value": 1, "source": "blog",
                                                     "ref": "?"}]}, "p.json")
