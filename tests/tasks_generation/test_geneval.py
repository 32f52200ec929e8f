"""GenEval: official metadata, the evaluate_images.py rules, aggregation, stand-in end to end."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lavida_bench.api import DataError, Options, Sample, Variant
from lavida_bench.tasks.base import ScoreContext
from lavida_bench.tasks.generation_fixtures import GENEVAL_SCENES, Placed, render
from lavida_bench.tasks.geneval import (
    Found,
    GenEval,
    color_crop,
    evaluate,
    keep_detections,
    read_metadata,
    relative_position,
)
from tests.tasks_generation.fakes import Det, ScriptedDetector, fake_backends, shared_file, standin_context, store_image


def official() -> Path:
    return shared_file("geneval", "evaluation_metadata.jsonl")


# ------------------------------------------------------------------------------------------------
# data


def test_official_metadata_counts():
    prompts = read_metadata(official())
    assert len(prompts) == 553
    assert Counter(p["tag"] for p in prompts) == {"single_object": 80, "two_object": 99, "counting": 80,
                                                  "colors": 94, "position": 100, "color_attr": 100}


def test_official_load_ids_and_images_per_prompt(tmp_path):
    (tmp_path / "evaluation_metadata.jsonl").symlink_to(official())
    assert [s.id for s in GenEval(tmp_path).load()[:2]] == ["00000/0", "00001/0"]
    samples = GenEval(tmp_path, {"images_per_prompt": 4}).load()
    assert len(samples) == 553 * 4
    assert samples[5].id == "00001/1" and samples[5].data["index"] == 1


def test_request_prefix_and_no_prefix(tmp_path):
    root = GenEval.make_fixture(tmp_path)
    sample = GenEval(root).load()[0]
    assert GenEval(root).request(sample, Variant("plain")).prompt == "a realistic image, 4k. a photo of a circle"
    assert GenEval(root, {"prefix": ""}).request(sample, Variant("plain")).prompt == "a photo of a circle"


@pytest.mark.parametrize("line,field", [
    ('{"tag": "x", "include": [{"class": "cup"}], "prompt": "p"}', "count"),
    ('{"tag": "x", "include": [], "prompt": "p"}', "include"),
    ('{"tag": "x", "include": [{"class": "cup", "count": 1, "color": "teal"}], "prompt": "p"}', "color"),
    ('{"tag": "x", "include": [{"class": "cup", "count": 1, "position": ["above", 0]}], "prompt": "p"}',
     "position"),
    ('{"include": [{"class": "cup", "count": 1}], "prompt": "p"}', "tag"),
    ("{not json", "not valid JSON"),
])
def test_bad_metadata_names_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "evaluation_metadata.jsonl"
    path.write_text('{"tag": "single_object", "include": [{"class": "cup", "count": 1}], "prompt": "p"}\n'
                    + line + "\n")
    with pytest.raises(DataError, match=rf"{path}: line 2.*{field}"):
        read_metadata(path)


# ------------------------------------------------------------------------------------------------
# detection keeping: thresholds, cap


def test_threshold_is_strict_at_0_3():
    kept = keep_detections([Det("cup", 0.3), Det("cup", 0.31), Det("cat", 0.29)], "two_object")
    assert [f.score for f in kept["cup"]] == [0.31]
    assert "cat" not in kept


def test_counting_prompts_use_0_9_for_every_class():
    dets = [Det("cup", 0.89), Det("cup", 0.95), Det("cat", 0.5), Det("cat", 0.9)]
    kept = keep_detections(dets, "counting")
    assert [f.score for f in kept["cup"]] == [0.95]
    assert "cat" not in kept  # 0.9 is not strictly above 0.9


def test_best_first_and_at_most_16_per_class():
    dets = [Det("cup", 0.31 + 0.01 * i) for i in range(20)]
    kept = keep_detections(dets, "single_object")["cup"]
    assert len(kept) == 16
    assert kept[0].score == pytest.approx(0.50) and kept[-1].score == pytest.approx(0.35)


def test_threshold_is_compared_in_float32():
    """evaluate_images.py compares mmdet's float32 score array with 0.3: a score of exactly
    float32(0.3) (0.3000000119 as a Python float) is not above it; the next float32 up is."""
    at = float(np.float32(0.3))
    above = float(np.nextafter(np.float32(0.3), np.float32(1)))
    kept = keep_detections([Det("cup", at), Det("cup", above)], "two_object")
    assert [f.score for f in kept["cup"]] == [above]


def test_ties_put_the_later_detection_first():
    """np.argsort(scores)[::-1]: of tied detections the later one comes first, so a count-1
    clause looks at the later box and the 16 cap drops the earliest."""
    first, best, later = (0.0, 0.0, 1.0, 1.0), (2.0, 0.0, 3.0, 1.0), (4.0, 0.0, 5.0, 1.0)
    kept = keep_detections([Det("cup", 0.5, first), Det("cup", 0.7, best), Det("cup", 0.5, later)], "colors")
    assert [f.box for f in kept["cup"]] == [best, later, first]
    capped = keep_detections([Det("cup", 0.5, (float(i), 0.0, i + 1.0, 1.0)) for i in range(3)] * 6, "colors")
    assert len(capped["cup"]) == 16 and capped["cup"][0].box == (2.0, 0.0, 3.0, 1.0)


# ------------------------------------------------------------------------------------------------
# clauses


def no_colors(found, colors, classname):
    raise AssertionError("colour classifier must not be called")


def found(*boxes):
    return [Found(0.9, b) for b in boxes]


def test_count_clause():
    meta = {"include": [{"class": "cup", "count": 2}]}
    assert evaluate({"cup": found((0, 0, 1, 1))}, meta, no_colors) == (False, "expected cup>=2, found 1")
    assert evaluate({"cup": found((0, 0, 1, 1), (2, 2, 3, 3))}, meta, no_colors) == (True, "")


def test_exclude_rule_counts_every_kept_detection():
    meta = {"tag": "counting", "include": [{"class": "square", "count": 2}],
            "exclude": [{"class": "square", "count": 3}]}
    three = keep_detections([Det("square", 0.95)] * 3, "counting")
    assert evaluate(three, meta, no_colors) == (False, "expected square<3, found 3")
    two_and_weak = keep_detections([Det("square", 0.95)] * 2 + [Det("square", 0.85)], "counting")
    assert evaluate(two_and_weak, meta, no_colors) == (True, "")


def test_exclude_sees_the_16_cap():
    meta = {"include": [{"class": "cup", "count": 1}], "exclude": [{"class": "cup", "count": 17}]}
    kept = keep_detections([Det("cup", 0.5)] * 20, "single_object")
    assert evaluate(kept, meta, no_colors)[0] is True


def test_color_checks_only_the_top_count_detections():
    calls = []

    def colors_of(objs, colors, classname):
        calls.append((len(objs), classname))
        return ["red" if o.score > 0.8 else "blue" for o in objs]

    kept = keep_detections([Det("cup", 0.5), Det("cup", 0.9)], "colors")
    assert evaluate(kept, {"include": [{"class": "cup", "count": 1, "color": "red"}]}, colors_of) == (True, "")
    assert calls == [(1, "cup")]
    correct, reason = evaluate(kept, {"include": [{"class": "cup", "count": 2, "color": "red"}]}, colors_of)
    assert not correct and reason.startswith("expected red cup>=2, found 1 red")


def test_failed_color_clause_fails_its_position_dependents():
    meta = {"include": [{"class": "cup", "count": 1, "color": "red"},
                        {"class": "cat", "count": 1, "position": ["left of", 0]}]}
    objects = {"cup": found((20, 0, 30, 10)), "cat": found((0, 0, 10, 10))}
    correct, reason = evaluate(objects, meta, lambda objs, colors, name: ["blue"] * len(objs))
    assert not correct
    assert reason.splitlines()[1] == "no target for cat to be left of"


def test_position_clause_every_pair_must_hold():
    meta = {"include": [{"class": "cup", "count": 2},
                        {"class": "cat", "count": 1, "position": ["left of", 0]}]}
    ok = {"cup": found((20, 0, 30, 10), (40, 0, 50, 10)), "cat": found((0, 0, 10, 10))}
    assert evaluate(ok, meta, no_colors) == (True, "")
    one_behind = {"cup": found((20, 0, 30, 10), (-40, 0, -30, 10)), "cat": found((0, 0, 10, 10))}
    correct, reason = evaluate(one_behind, meta, no_colors)
    assert not correct and reason == "expected cat left of target, found right of target"


# ------------------------------------------------------------------------------------------------
# relative position (hand-computed: offset d, shrink 0.1 * (size_a + size_b) per axis, / |d|)

A = (0, 0, 10, 10)


@pytest.mark.parametrize("box_b,expected", [
    ((20, 0, 30, 10), {"left of"}),  # d=(-20,0): r=(-18,0), dx=-0.9
    ((-20, 0, -10, 10), {"right of"}),  # dx=+0.9
    ((0, 20, 10, 30), {"above"}),  # y points down: A's centre is higher
    ((0, -20, 10, -10), {"below"}),
    ((20, 20, 30, 30), {"left of", "above"}),  # r=(-18,-18)/28.28 = -0.636 each
    ((20, 10, 30, 20), {"left of"}),  # r=(-18,-8)/22.36 = (-0.805, -0.358)
    ((3, 0, 13, 10), set()),  # r=(-1,0)/3 = -0.333: outside the dead zone, but no relation
    ((1, 1, 11, 11), set()),  # dead zone: |d| = 1 < 2 on both axes, r = 0
])
def test_relative_position(box_b, expected):
    assert relative_position(A, box_b) == expected


def test_dead_zone_edge_is_1e_3():
    # sizes 10 + 10 -> shrink 2 per axis; |dx| = 2.0009 leaves r = 0.0009 < 1e-3: no relation at all
    assert relative_position((0, 0, 10, 10), (2.0009, 0, 12.0009, 10)) == set()
    # r = 0.5 > 1e-3 but 0.5 / 2.5 = 0.2 < 0.5: still no relation
    assert relative_position((0, 0, 10, 10), (2.5, 0, 12.5, 10)) == set()
    # a larger gap: r = 18 / 20
    assert relative_position((0, 0, 10, 10), (20, 0, 30, 10)) == {"left of"}


def test_color_crop_greys_out_pixels_outside_the_mask():
    image = Image.new("RGB", (4, 4), (255, 0, 0))
    mask = np.zeros((4, 4), dtype=bool)
    mask[1, 1] = True
    crop = color_crop(image, Found(0.9, (0, 0, 2, 2), mask))
    assert crop.size == (2, 2)
    assert crop.getpixel((1, 1)) == (255, 0, 0)
    assert crop.getpixel((0, 0)) == (153, 153, 153)  # "#999"


def test_color_crop_refuses_a_mask_of_the_wrong_size():
    with pytest.raises(DataError, match="mask shape"):
        color_crop(Image.new("RGB", (4, 4)), Found(0.9, (0, 0, 2, 2), np.ones((3, 3), dtype=bool)))


# ------------------------------------------------------------------------------------------------
# score and aggregate


def sample_for(meta, index=0):
    return Sample(f"{index:05d}/0", {"index": index, "metadata": meta, "image_index": 0})


def test_score_with_scripted_detector_and_missing_image(tmp_path):
    meta = {"tag": "single_object", "include": [{"class": "cup", "count": 1}], "prompt": "a photo of a cup"}
    ctx = ScoreContext(tmp_path, fake_backends(detector=ScriptedDetector([Det("cup", 0.8)])))
    output = store_image(tmp_path, Image.new("RGB", (16, 16)))
    assert GenEval(None).score(sample_for(meta), output, ctx) == {
        "tag": "single_object", "prompt_index": 0, "correct": 1.0, "reason": "", "attempts_correct": []}
    missing = GenEval(None).score(sample_for(meta), {"image": None, "attempts": []}, ctx)
    assert missing["correct"] == 0.0 and missing["reason"] == "no image returned"


def test_macro_average_over_tags():
    scores = ([{"tag": "single_object", "correct": c} for c in (1.0, 1.0, 0.0, 0.0)]
              + [{"tag": "counting", "correct": 1.0}])
    metrics = GenEval(None).aggregate(scores)
    assert metrics["single_object"].value == 0.5
    assert metrics["counting"].value == 1.0
    assert metrics["overall"].value == 0.75  # not the image mean 0.6
    assert metrics["overall"].n == 5


@pytest.mark.parametrize("meta,scene", GENEVAL_SCENES, ids=[m["tag"] for m, _ in GENEVAL_SCENES])
def test_shapes_truth_scores_correct_with_standins(tmp_path, meta, scene):
    ctx = standin_context(tmp_path)
    result = GenEval(None).score(sample_for(meta), store_image(tmp_path, render(scene)), ctx)
    assert result["correct"] == 1.0, result["reason"]


@pytest.mark.parametrize("tag,scene,reason", [
    ("counting", (Placed("square", "orange", (0, 1)), Placed("square", "orange", (2, 1)),
                  Placed("square", "red", (1, 2))), "expected square<3, found 3"),
    ("colors", (Placed("triangle", "red", (1, 1)),), "expected blue triangle>=1, found 0 blue"),
    ("position", (Placed("circle", "purple", (2, 1)), Placed("square", "yellow", (0, 1))),
     "expected circle left of target, found right of target"),
    ("single_object", (Placed("square", "red", (1, 1)),), "expected circle>=1, found 0"),
])
def test_shapes_wrong_images_fail_with_standins(tmp_path, tag, scene, reason):
    meta = next(m for m, _ in GENEVAL_SCENES if m["tag"] == tag)
    result = GenEval(None).score(sample_for(meta), store_image(tmp_path, render(scene)), standin_context(tmp_path))
    assert result["correct"] == 0.0
    assert result["reason"].startswith(reason)


def test_reflection_scores_the_final_image_and_keeps_attempts(tmp_path):
    meta, scene = next((m, s) for m, s in GENEVAL_SCENES if m["tag"] == "colors")
    wrong = store_image(tmp_path, render((Placed("triangle", "red", (1, 1)),)), "attempt0.png")
    final = store_image(tmp_path, render(scene), "final.png")
    output = {"image": final["image"], "attempts": [wrong["image"]], "trace": {"rounds": [{}, {}]}}
    result = GenEval(None).score(sample_for(meta), output, standin_context(tmp_path))
    assert result["correct"] == 1.0
    assert result["attempts_correct"] == [0.0]


def test_fixture_is_official_format(tmp_path):
    root = GenEval.make_fixture(tmp_path)
    lines = (root / "evaluation_metadata.jsonl").read_text().splitlines()
    assert [json.loads(line)["tag"] for line in lines] == ["single_object", "two_object", "counting",
                                                           "colors", "position", "color_attr"]
    req = GenEval(root).request(GenEval(root).load()[4], Variant("plan", Options(plan=True)))
    assert req.prompt.endswith("a photo of a circle left of a square") and req.options.plan
