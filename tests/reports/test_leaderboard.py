"""Leaderboard: runs and published numbers ranked per benchmark and overall."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from lavida_bench.reports import leaderboard
from lavida_bench.reports.leaderboard import competition_ranks

from tests.reports.builder import write_run
from tests.reports.golden import PLAIN_TRACE, geneval_rows, split_rows, write_golden


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("board")
    a = write_golden(root / "ckpt_a")
    b = write_run(root / "ckpt_b", {
        "geneval": {"plain": geneval_rows("plain", 20, 10, PLAIN_TRACE)},  # overall 1.0
        "refcoco": {"steps1": split_rows("r", "split", [("refcoco/val", 10, 10)])},  # 100.0
    })
    return a, b


def test_geneval_board_with_published_numbers(runs):
    board = leaderboard(list(runs), include_published=True)
    t = next(t for t in board.tables if t.key == "leaderboard_geneval")
    got = [(r[0], r[1], r[2], r[3]) for r in t.rows]
    assert got == [
        ("1", "ckpt_b", "plain", "1.00"),
        ("2", "ckpt_a", "+ planning + reflection", "0.90"),
        ("3", "Lavida-O (published)", "+ planning + reflection", "0.89"),
        ("4", "Lavida-O (published)", "+ planning", "0.85"),
        ("5", "BAGEL (published)", "–", "0.82"),
        ("6", "ckpt_a", "+ planning", "0.80"),
        ("7", "Lavida-O (published)", "plain", "0.77"),
        ("8", "SD3-Medium (published)", "–", "0.74"),
        ("9", "Flux-dev (published)", "–", "0.68"),
        ("10", "MMaDA (published)", "–", "0.63"),
        ("11", "Muddit (published)", "–", "0.61"),
        ("12", "ckpt_a", "plain", "0.55"),
    ]
    published = next(r for r in t.records if r["system"] == "BAGEL")
    assert published["source"] == ("third-party summary of arXiv 2509.19244, not checked against the paper; "
                                   "re-check before publishing, GenEval results table") and published["published"]


def test_fid_board_ranks_lower_first(runs):
    board = leaderboard([runs[0]], include_published=True)
    t = next(t for t in board.tables if t.key == "leaderboard_fid30k")
    assert [(r[1], r[3]) for r in t.rows] == [("Lavida-O (published)", "6.68"), ("Flux-dev (published)", "10.15"),
                                              ("SD3-Medium (published)", "11.92"), ("ckpt_a", "12.50"),
                                              ("MMaDA (published)", "32.85")]


def test_overall_mean_rank_only_over_the_benchmarks_every_system_has(runs):
    board = leaderboard(list(runs), include_published=False)
    overall = board.tables[-1]
    assert overall.key == "leaderboard_overall"
    # ckpt_b has geneval and refcoco only: ckpt_a's five other benchmarks do not count overall
    assert overall.rows == [["1", "ckpt_b", "1.00", "1", "1"], ["2", "ckpt_a", "2.00", "2", "2"]]
    assert overall.records[1]["ranks"] == {"geneval": 2, "refcoco": 2}
    data = json.loads(board.to_json())
    assert [t["key"] for t in data["tables"]][-1] == "leaderboard_overall"
    md = board.to_markdown()
    assert md.startswith("# Leaderboard") and "| 1 | ckpt_b | 1.00 | 1 | 1 |" in md


def test_published_systems_are_ranked_overall_only_on_the_runs_benchmarks(runs):
    """GPT-4o has one ImgEdit number: it cannot come first overall on that alone."""
    board = leaderboard(list(runs), include_published=True)
    overall = board.tables[-1]
    # the paper prints no all-splits RefCOCO number (the headline): the published Lavida-O is not ranked either
    assert [r[1] for r in overall.rows] == ["ckpt_b", "ckpt_a"]
    assert "GPT-4o (published)" not in [r[1] for r in overall.rows]
    assert any("GPT-4o (published)" in n for n in overall.notes)
    assert any("Lavida-O (published)" in n for n in overall.notes)


def test_competition_ranking_shares_ties():
    assert competition_ranks([3.0, 3.0, 1.0], lower_is_better=False) == [1, 1, 3]
    assert competition_ranks([3.0, 3.0, 1.0], lower_is_better=True) == [2, 2, 1]


def test_write_leaderboard_files(runs, tmp_path: Path):
    from lavida_bench.reports import write_leaderboard

    md, js = write_leaderboard(leaderboard(list(runs)), tmp_path)
    assert md.read_text().startswith("# Leaderboard")
    assert json.loads(js.read_text())["tables"][0]["key"] == "leaderboard_geneval"
