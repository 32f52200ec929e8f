"""DPG-Bench: prompts and CSV loading, the dependency rule, both compat and category modes."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from lavida_bench.api import DataError, Sample, Variant
from lavida_bench.tasks.base import ScoreContext
from lavida_bench.tasks.dpg_bench import (
    DPGBench,
    MissingParent,
    Question,
    apply_dependencies,
    read_prompts,
    read_questions,
)
from lavida_bench.tasks.generation_fixtures import DPG_COLUMNS, DPG_SCENES, Placed, render
from tests.tasks_generation.fakes import ScriptedVQA, fake_backends, shared_file, standin_context, store_image


def official_prompts() -> Path:
    return shared_file("dpg", "prompts")


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(DPG_COLUMNS)
        for item, pid, dep, tup, question in rows:
            l1, l2 = (p.strip() for p in tup.split("(")[0].split("-", 1))
            writer.writerow([item, "text", "", pid, dep, l1, l2, tup, question])


def make_data(tmp_path, prompts, rows):
    (tmp_path / "prompts").mkdir()
    for item, text in prompts.items():
        (tmp_path / "prompts" / f"{item}.txt").write_text(f"  {text}\n")
    write_csv(tmp_path / "dpg_bench.csv", rows)
    return tmp_path


ROWS = [  # item "a": a chain 1 <- 2 <- 3 and an independent 4; item "b": one question
    ("a", 1, "0", "entity - whole (cube)", "Is there a cube?"),
    ("a", 2, "1", "attribute - color (cube, red)", "Is the cube red?"),
    ("a", 3, "2", "attribute - texture (cube, shiny)", "Is the red cube shiny?"),
    ("a", 4, "0", "entity - whole (table)", "Is there a table?"),
    ("b", 1, "0", "global - (photo)", "Is this a photo?"),
]


# ------------------------------------------------------------------------------------------------
# data


def test_official_prompts_count_and_ids():
    prompts = read_prompts(official_prompts())
    assert len(prompts) == 1065
    assert sum(k.isdigit() for k in prompts) == 299
    assert sum(k.startswith("partiprompts") for k in prompts) == 324
    assert all(v == v.strip() and v for v in prompts.values())


def test_official_prompts_load_with_a_question_file(tmp_path):
    folder = official_prompts()
    (tmp_path / "prompts").symlink_to(folder)
    ids = sorted(p.stem for p in folder.glob("*.txt"))
    write_csv(tmp_path / "dpg_bench.csv", [(i, 1, "0", "entity - whole (x)", "Is there an x?") for i in ids])
    samples = DPGBench(tmp_path, {"compat": "fixed"}).load()
    assert len(samples) == 1065
    grid = DPGBench(tmp_path, {"compat": "fixed", "protocol": "grid"}).load()
    assert len(grid) == 4 * 1065 and grid[3].id.endswith("/3")


def test_questions_in_csv_order_and_first_row_drop(tmp_path):
    write_csv(tmp_path / "q.csv", ROWS)
    fixed = read_questions(tmp_path / "q.csv", official=False)
    assert [q.pid for q in fixed["a"]] == [1, 2, 3, 4]
    assert fixed["a"][2] == Question(3, (2,), "attribute - texture", "Is the red cube shiny?")
    assert fixed["b"][0].category == "global -"
    official = read_questions(tmp_path / "q.csv", official=True)
    assert [q.pid for q in official["a"]] == [2, 3, 4]


def test_official_mode_skips_an_image_whose_walk_reaches_a_dropped_parent(tmp_path):
    root = make_data(tmp_path, {"a": "a red cube", "b": "a photo"}, ROWS)
    official = {s.id: s for s in DPGBench(root).load()}
    assert official["a/0"].data["skip"] is None  # whether the walk reaches pid 1 depends on answers
    assert official["a/0"].data["prompt"] == "a red cube"  # stripped
    result = DPGBench(root).score(official["a/0"], {"image": None}, ScoreContext(root))
    assert result == {"item": "a", "image_index": 0, "answers": ["", "", ""],
                      "skipped": "question 2 depends on missing proposition 1"}
    assert DPGBench(root, {"compat": "fixed"}).load()[0].data["skip"] is None


def test_fixed_mode_refuses_dangling_parents(tmp_path):
    root = make_data(tmp_path, {"a": "x"}, [("a", 1, "0", "entity - whole (x)", "x?"),
                                             ("a", 2, "7", "entity - whole (y)", "y?")])
    with pytest.raises(DataError, match=r"dpg_bench.csv: item 'a': question 2 depends on missing"):
        DPGBench(root, {"compat": "fixed"}).load()


@pytest.mark.parametrize("bad,field", [("x", "proposition_id"), (None, "dependency")])
def test_bad_csv_values_name_line_and_field(tmp_path, bad, field):
    row = ["a", "t", "", 1, "0", "entity", "whole", "entity - whole (x)", "x?"]
    row[3 if field == "proposition_id" else 4] = "1;2" if bad is None else bad
    with open(tmp_path / "q.csv", "w", newline="") as f:
        csv.writer(f).writerows([DPG_COLUMNS, row])
    with pytest.raises(DataError, match=rf"q.csv: line 2: field '{field}'"):
        read_questions(tmp_path / "q.csv", official=False)


def test_missing_csv_and_header(tmp_path):
    with pytest.raises(DataError, match="dpg_bench.csv: missing"):
        read_questions(tmp_path / "dpg_bench.csv", official=False)
    (tmp_path / "q.csv").write_text("item_id,text\n1,x\n")
    with pytest.raises(DataError, match="header lacks column"):
        read_questions(tmp_path / "q.csv", official=False)


def test_csv_with_a_byte_order_mark_reads_like_pandas(tmp_path):
    write_csv(tmp_path / "q.csv", ROWS)
    plain = (tmp_path / "q.csv").read_bytes()
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + plain)
    assert read_questions(tmp_path / "bom.csv", official=False) == read_questions(tmp_path / "q.csv", official=False)


def test_repeated_proposition_id_keeps_the_later_row_in_the_earlier_place(tmp_path):
    """prepare_dpg_data fills dicts keyed by proposition id: one question per id, at the position
    of its first row, with the content of its last."""
    repeated = ("a", 2, "1", "entity - whole (ball)", "Is there a ball?")
    write_csv(tmp_path / "q.csv", [ROWS[0], ROWS[0], ROWS[1], ROWS[3], repeated])
    questions = read_questions(tmp_path / "q.csv", official=True)["a"]
    assert [(q.pid, q.text) for q in questions] == [(1, "Is there a cube?"), (2, "Is there a ball?"),
                                                    (4, "Is there a table?")]
    assert questions[1].parents == (1,)
    with pytest.raises(DataError, match=r"q.csv: line 3: item 'a' repeats proposition_id 1"):
        read_questions(tmp_path / "q.csv", official=False)


def test_interleaved_item_rows_are_refused(tmp_path):
    write_csv(tmp_path / "q.csv", [ROWS[0], ROWS[4], ROWS[1]])
    with pytest.raises(DataError, match="line 4: rows of item 'a' are not consecutive"):
        read_questions(tmp_path / "q.csv", official=False)


# ------------------------------------------------------------------------------------------------
# scoring


def qs(*parents):
    return [Question(i + 1, p, "entity - whole", "?") for i, p in enumerate(parents)]


def test_dependency_zeroing_propagates_down_a_chain():
    questions = qs((0,), (1,), (2,), (0,), (1, 4))
    assert apply_dependencies(questions, [0.0, 1.0, 1.0, 1.0, 1.0]) == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert apply_dependencies(questions, [1.0, 1.0, 1.0, 0.0, 1.0]) == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_dependency_walk_stops_at_the_first_failed_parent():
    """compute_dpg_bench.py: `qid2scores[parent_id]` raises (the image is left out) only for a
    missing parent the walk reaches; a failed parent before it ends the walk."""
    questions = qs((0,), (1, 9))
    assert apply_dependencies(questions, [0.0, 1.0]) == [0.0, 0.0]
    with pytest.raises(MissingParent, match="question 2 depends on missing proposition 9"):
        apply_dependencies(questions, [1.0, 1.0])


def test_dependency_rule_walks_in_csv_order_in_place():
    # q1 depends on q3, which is zeroed only later (via q2): q1 keeps its raw 1, as in the script
    questions = qs((3,), (0,), (2,))
    assert apply_dependencies(questions, [1.0, 0.0, 1.0]) == [1.0, 0.0, 0.0]


def test_score_exact_yes_and_dependency(tmp_path):
    root = make_data(tmp_path, {"a": "a red cube"}, ROWS[:4])
    sample = next(s for s in DPGBench(root, {"compat": "fixed"}).load())
    vqa = ScriptedVQA({"Is there a cube?": "Yes", "Is the cube red?": "yes", "Is the red cube shiny?": "yes",
                       "Is there a table?": "yes"})
    ctx = ScoreContext(tmp_path, fake_backends(vqa=vqa))
    result = DPGBench(root, {"compat": "fixed"}).score(sample, store_image(tmp_path, Image.new("RGB", (8, 8))), ctx)
    assert result["raw"] == [0.0, 1.0, 1.0, 1.0]  # "Yes" is not "yes"
    assert result["final"] == [0.0, 0.0, 0.0, 1.0]
    assert result["score"] == 0.25
    assert vqa.asked == [q for *_, q in ROWS[:4]]


@pytest.mark.parametrize("first_answer,expected", [("no", {"score": 0.0}), ("yes", {"skipped": True})])
def test_official_mode_missing_parent_matters_only_if_reached(tmp_path, first_answer, expected):
    rows = [("z", 1, "0", "entity - whole (z)", "z?"),  # the first data row, dropped as the script does
            ("a", 1, "0", "entity - whole (cube)", "Is there a cube?"),
            ("a", 2, "1, 9", "attribute - color (cube, red)", "Is the cube red?")]
    root = make_data(tmp_path, {"a": "a red cube"}, rows)
    vqa = ScriptedVQA({"Is there a cube?": first_answer, "Is the cube red?": "yes"})
    image = store_image(tmp_path, Image.new("RGB", (8, 8)))
    result = DPGBench(root).score(DPGBench(root).load()[0], image, ScoreContext(tmp_path, fake_backends(vqa=vqa)))
    assert {k: (True if k == "skipped" else v) for k, v in result.items() if k in expected} == expected
    with pytest.raises(DataError, match="question 2 depends on missing proposition"):
        DPGBench(root, {"compat": "fixed"}).load()


def test_no_image_scores_zero_without_asking(tmp_path):
    root = make_data(tmp_path, {"a": "x"}, ROWS[:2])
    sample = DPGBench(root, {"compat": "fixed"}).load()[0]
    vqa = ScriptedVQA({})
    ctx = ScoreContext(tmp_path, fake_backends(vqa=vqa))
    result = DPGBench(root, {"compat": "fixed"}).score(sample, {"image": None}, ctx)
    assert result["score"] == 0.0 and vqa.asked == []


# Two items: "a" with two images (grid-like), "b" with one.
CAT = ["entity - whole", "attribute - color"]
SCORES = [
    {"item": "a", "image_index": 0, "score": 1.0, "raw": [1.0, 1.0], "final": [1.0, 1.0], "categories": CAT},
    {"item": "a", "image_index": 1, "score": 0.0, "raw": [0.0, 1.0], "final": [0.0, 0.0], "categories": CAT},
    {"item": "b", "image_index": 0, "score": 1.0, "raw": [1.0], "final": [1.0], "categories": CAT[:1]},
    {"item": "c", "image_index": 0, "skipped": "question 2 depends on missing proposition(s) [1]"},
]


def test_overall_is_100_times_mean_of_item_means_skipping_failed_items():
    metrics = DPGBench(None).aggregate(SCORES)
    assert metrics["overall"].value == pytest.approx(75.0)  # items: a = 0.5, b = 1.0
    assert metrics["overall"].n == 2
    assert metrics["skipped_items_fraction"].value == pytest.approx(1 / 3)


def test_an_item_with_one_skipped_image_is_left_out_whole():
    """The script scores a grid as one image file: a KeyError on any crop drops all four."""
    skipped_a1 = [SCORES[0], {"item": "a", "image_index": 1, "skipped": "question 2 depends on missing proposition 9"},
                  SCORES[2]]
    metrics = DPGBench(None).aggregate(skipped_a1)
    assert metrics["overall"].value == pytest.approx(100.0) and metrics["overall"].n == 1  # item b only
    assert metrics["skipped_items_fraction"].value == pytest.approx(0.5)


def test_category_official_mode_raw_answers_of_the_last_image():
    metrics = DPGBench(None, {"compat": "official"}).aggregate(SCORES)
    assert metrics["L2/entity - whole"].value == pytest.approx(50.0)  # a/1 raw 0, b raw 1
    assert metrics["L2/attribute - color"].value == pytest.approx(100.0)
    assert metrics["L1/entity"].value == pytest.approx(50.0)
    assert metrics["L1/attribute"].value == pytest.approx(100.0)


def test_category_fixed_mode_pools_every_image():
    metrics = DPGBench(None, {"compat": "fixed"}).aggregate(SCORES)
    assert metrics["L2/entity - whole"].value == pytest.approx(200 / 3)
    assert metrics["L2/entity - whole"].n == 3
    assert metrics["L2/attribute - color"].value == pytest.approx(100.0)


def test_category_after_dependency_rule():
    metrics = DPGBench(None, {"category_answers": "dependency"}).aggregate(SCORES)
    assert metrics["L2/attribute - color"].value == pytest.approx(0.0)  # a/1 final [0, 0]
    assert metrics["L2/entity - whole"].value == pytest.approx(50.0)


def test_request_is_the_prompt_as_is(tmp_path):
    root = DPGBench.make_fixture(tmp_path)
    sample = DPGBench(root).load()[0]
    assert DPGBench(root).request(sample, Variant("plain")).prompt == DPG_SCENES[0][1]


def test_shapes_truth_scores_full_marks_with_standin_vqa(tmp_path):
    root = DPGBench.make_fixture(tmp_path / "data", seed=0)
    task = DPGBench(root, {"compat": "fixed"})
    ctx = standin_context(tmp_path)
    scores = []
    for sample, (item, _, _, scene) in zip(task.load(), DPG_SCENES, strict=True):
        assert sample.data["item"] == item
        scores.append(task.score(sample, store_image(tmp_path, render(scene), f"{item}.png"), ctx))
    assert [s["score"] for s in scores] == [1.0, 1.0, 1.0]
    assert task.aggregate(scores)["overall"].value == pytest.approx(100.0)
    # the wrong colour fails the child question only: item "0" scores 1/2
    wrong = task.score(task.load()[0], store_image(tmp_path, render((Placed("circle", "blue", (1, 1)),))), ctx)
    assert wrong["raw"] == [1.0, 0.0] and wrong["score"] == 0.5


def test_fixture_official_mode_drops_first_question_and_skips_item_0(tmp_path):
    root = DPGBench.make_fixture(tmp_path)
    samples = DPGBench(root).load()
    assert isinstance(samples[0], Sample)
    # item "0" lost its first question, on which its other question depends
    assert "skipped" in DPGBench(root).score(samples[0], {"image": None}, ScoreContext(tmp_path))
    assert "skipped" not in DPGBench(root).score(samples[1], {"image": None}, ScoreContext(tmp_path))
