"""ImgEdit: instruction loading, crop, judge requests, reply parsing, per-category aggregation."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from lavida_bench.api import DataError, Sample, Variant
from lavida_bench.tasks.base import ScoreContext
from lavida_bench.tasks.imgedit import ImgEdit, center_crop, read_instructions, read_rubrics, reply_scores
from tests.tasks_generation.fakes import ScriptedJudge, fake_backends, shared_file, standin_context, store_image


def official() -> Path:
    return shared_file("imgedit", "imagedit.json")
REPLY = ("Brief reasoning: The dog was replaced cleanly.\nPrompt Compliance: 4\n"
         "Visual Naturalness: 3\nPhysical & Detail Integrity: 3")


def test_official_instructions_count_and_categories():
    items = read_instructions(official())
    assert len(items) == 737
    assert Counter(i["edit_type"] for i in items.values()) == {
        "extract": 117, "style": 100, "add": 95, "adjust": 94, "background": 94, "replace": 92,
        "remove": 86, "action": 36, "compose": 23}


def test_official_file_is_found_under_its_lavida_name(tmp_path):
    (tmp_path / "imagedit.json").symlink_to(official())
    assert ImgEdit(tmp_path).instruction_path() == tmp_path / "imagedit.json"
    with pytest.raises(DataError, match=r"prompts.json: missing"):  # the rubric file must be supplied
        ImgEdit(tmp_path).load()


# ------------------------------------------------------------------------------------------------
# reply parsing (step1_get_avgscore.py)


@pytest.mark.parametrize("reply,expected", [
    (REPLY, [4, 3, 3]),
    ("  Style Fidelity: 5  \nContent Preservation: 4\nRendering Quality: 5", [5, 4, 5]),
    ("Prompt Compliance:4\nVisual Naturalness: 4/5\nScore: 3.5", []),  # no ': ', not digits
    ("Note: a: 5\nPrompt Compliance: 2", [2]),  # three parts are ignored
    ("I cannot evaluate these images.", []),
    ("", []),
    ({"error": "Image conversion failed"}, []),  # the official script's error entries
])
def test_reply_scores(reply, expected):
    assert reply_scores(reply) == expected


# ------------------------------------------------------------------------------------------------
# requests


def test_center_crop_shorter_side_then_centre():
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    image.paste((0, 0, 255), (100, 0, 200, 100))
    crop = center_crop(image, 50)  # 200x100 -> 100x50, columns 25..74 kept
    assert crop.size == (50, 50)
    assert crop.getpixel((5, 25)) == (255, 0, 0)
    assert crop.getpixel((45, 25)) == (0, 0, 255)


def test_edit_request_crops_source_and_keeps_instruction(tmp_path):
    root = ImgEdit.make_fixture(tmp_path)
    task = ImgEdit(root, {"crop_size": 128})
    sample = task.load()[0]
    req = task.request(sample, Variant("plain"))
    assert req.prompt == "Remove the red circle." and req.capability == "edit"
    assert [im.size for im in req.images] == [(128, 128)]
    assert ImgEdit(root, {"crop": "none"}).request(sample, Variant("plain")).images[0].size == (256, 256)


def test_bad_instruction_and_rubric_files(tmp_path):
    (tmp_path / "singleturn.json").write_text(json.dumps({"1": {"id": "a.jpg", "prompt": "x"}}))
    with pytest.raises(DataError, match=r"singleturn.json: record '1': field 'edit_type'"):
        ImgEdit(tmp_path).load()
    (tmp_path / "prompts.json").write_text(json.dumps({"add": "no placeholder"}))
    with pytest.raises(DataError, match=r"prompts.json: record 'add': expected a rubric string containing <edit"):
        read_rubrics(tmp_path / "prompts.json", {"add"})


def test_source_paths_may_not_escape_the_data_folder(tmp_path):
    root = ImgEdit.make_fixture(tmp_path / "data")
    items = json.loads((root / "singleturn.json").read_text())
    items["1"]["id"] = "../../etc/passwd"
    (root / "singleturn.json").write_text(json.dumps(items))
    with pytest.raises(DataError, match="escapes the dataset folder"):
        ImgEdit(root).load()


def test_missing_source_image_is_named(tmp_path):
    root = ImgEdit.make_fixture(tmp_path)
    (root / "shapes" / "000000002.jpg").unlink()
    with pytest.raises(DataError, match=r"record '2': source image .*000000002.jpg not found"):
        ImgEdit(root).load()


# ------------------------------------------------------------------------------------------------
# scoring


def test_judge_request_rubric_and_image_order(tmp_path):
    root = ImgEdit.make_fixture(tmp_path / "data")
    task = ImgEdit(root)
    sample = task.load()[0]
    judge = ScriptedJudge(reply=REPLY)
    edited = Image.new("RGB", (64, 64), (0, 255, 0))
    result = task.score(sample, store_image(tmp_path, edited), ScoreContext(tmp_path, fake_backends(judge=judge)))
    assert result == {"edit_type": "remove", "judge_reference": "original", "status": "ok", "score": 3.33,
                      "aspects": [4, 3, 3], "judge": "scripted", "reply": REPLY}
    key, prompt, images = judge.calls[0]
    assert key == "imgedit/1"
    assert "<edit_prompt>" not in prompt and "instruction: Remove the red circle.\n" in prompt
    assert images[0].size == (256, 256)  # the benchmark's original first
    assert images[1].getpixel((0, 0)) == (0, 255, 0)  # the edit second
    cropped = ImgEdit(root, {"judge_reference": "cropped", "crop_size": 100})
    cropped.score(sample, store_image(tmp_path, edited), ScoreContext(tmp_path, fake_backends(judge=judge)))
    assert judge.calls[1][2][0].size == (100, 100)


def test_unparseable_and_errored_replies_are_recorded(tmp_path):
    root = ImgEdit.make_fixture(tmp_path / "data")
    task = ImgEdit(root)
    sample = task.load()[1]
    output = store_image(tmp_path, Image.new("RGB", (8, 8)))
    garbled = ScriptedJudge(reply="<html>502</html>")
    garbage = task.score(sample, output, ScoreContext(tmp_path, fake_backends(judge=garbled)))
    assert garbage["status"] == "unparseable" and garbage["score"] is None
    failing = ScriptedJudge(error=TimeoutError("judge timed out after 4 retries"))
    with pytest.raises(TimeoutError, match="judge timed out"):  # a scoring error, retried next run
        task.score(sample, output, ScoreContext(tmp_path, fake_backends(judge=failing)))
    assert task.score(sample, {"image": None}, ScoreContext(tmp_path))["status"] == "no_image"


def test_aggregate_excludes_failures_and_reports_both_overalls():
    scores = [
        {"edit_type": "add", "status": "ok", "score": 4.0},
        {"edit_type": "add", "status": "ok", "score": 3.0},
        {"edit_type": "add", "status": "judge_error", "score": None},
        {"edit_type": "remove", "status": "ok", "score": 2.0},
        {"edit_type": "remove", "status": "unparseable", "score": None},
    ]
    metrics = ImgEdit(None).aggregate(scores)
    assert metrics["add"].value == 3.5 and metrics["add"].n == 2
    assert metrics["remove"].value == 2.0
    assert metrics["overall"].value == 2.75  # category mean
    assert metrics["overall_items"].value == 3.0  # item-weighted mean
    assert metrics["unparseable_rate"].value == 0.2 and metrics["judge_error_rate"].value == 0.2
    assert metrics["no_image_rate"].value == 0.0


def test_standin_judge_end_to_end(tmp_path):
    root = ImgEdit.make_fixture(tmp_path / "data")
    task = ImgEdit(root)
    ctx = standin_context(tmp_path / "run")
    scores = []
    for s in task.load():
        unchanged = Image.open(root / s.data["id"]).convert("RGB")
        scores.append(task.score(s, store_image(ctx.run_dir, unchanged, f"{s.id}.png"), ctx))
    assert [s["status"] for s in scores] == ["ok"] * 4
    assert all(len(s["aspects"]) == 3 and 1 <= min(s["aspects"]) <= max(s["aspects"]) <= 5 for s in scores)
    # an unchanged image: no compliance (1), and later aspects never exceed the first
    assert all(s["aspects"][0] == 1 and max(s["aspects"][1:]) <= 1 for s in scores)
    assert scores[0]["reply"].splitlines()[1].startswith("Prompt Compliance: ")
    assert ImgEdit(root).aggregate(scores)["overall"].value == pytest.approx(1.0)


def test_sample_carries_its_rubric(tmp_path):
    root = ImgEdit.make_fixture(tmp_path)
    sample = ImgEdit(root).load()[2]
    assert isinstance(sample, Sample) and sample.data["edit_type"] == "replace"
    assert "Physical & Detail Integrity: <1-5>" in sample.data["rubric"]
