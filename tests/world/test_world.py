"""The world's truth: scenes, GenEval captions, referring expressions, questions, edits, verdicts."""
from __future__ import annotations

import numpy as np
import pytest

from lavida_bench.backends.shapes import Shape
from lavida_bench.world.detect import detect
from lavida_bench.world.edits import OPERATIONS, outcome, parse_instruction, sample_edit
from lavida_bench.world.language import (GENEVAL_TAGS, geneval_caption, grounding_answer, layout_text,
                                         questions, refer)
from lavida_bench.world.scene import MAX_OBJECTS, Scene, boxes_apart, sample_scene, visible_colors
from lavida_bench.world.verdicts import CORRECT, judge_pair, truth_check, verdict


def test_scenes_are_deterministic_separate_and_visible() -> None:
    a = sample_scene(np.random.default_rng(5), 96)
    assert a == sample_scene(np.random.default_rng(5), 96)
    assert a.image().tobytes() == sample_scene(np.random.default_rng(5), 96).image().tobytes()
    rng = np.random.default_rng(6)
    for _ in range(100):
        scene = sample_scene(rng, 64)
        assert 1 <= len(scene.objects) <= MAX_OBJECTS
        assert all(o.color in visible_colors(scene.background) for o in scene.objects)
        boxes = [o.box for o in scene.objects]
        assert all(boxes_apart(p, q, 3) for i, p in enumerate(boxes) for q in boxes[i + 1:])
        assert all(0 < b[0] and b[2] < 64 and 0 < b[1] and b[3] < 64 for b in boxes)


def test_bad_scenes_are_refused() -> None:
    with pytest.raises(ValueError, match="side"):
        Scene(32, ())
    with pytest.raises(ValueError, match="background"):
        Scene(64, (), "plaid")
    with pytest.raises(ValueError, match="no background"):
        sample_scene(np.random.default_rng(0), 64, [("circle", "white"), ("square", "black")])


@pytest.mark.parametrize("tag", GENEVAL_TAGS)
def test_geneval_captions_are_true_of_their_scene(tag: str) -> None:
    rng = np.random.default_rng(1)
    for _ in range(10):
        caption = geneval_caption(rng, tag)
        assert caption.meta["tag"] == tag and caption.meta["prompt"] == caption.text
        assert caption.text.startswith("a photo of ")
        assert truth_check(caption, caption.scene) == (True, "")
        assert verdict(caption, caption.scene) == CORRECT


def test_known_captions() -> None:
    rng = np.random.default_rng(3)
    texts = {tag: geneval_caption(rng, tag).text for tag in GENEVAL_TAGS}
    assert texts["counting"].split()[3] in ("two", "three", "four") and texts["counting"].endswith("s")
    assert " and " in texts["two_object"] and " and " in texts["color_attr"]
    assert any(r in texts["position"] for r in ("left of", "right of", "above", "below"))


def test_wrong_images_get_the_releases_feedback_sentences() -> None:
    rng = np.random.default_rng(4)
    for tag in GENEVAL_TAGS:
        for _ in range(5):
            pair = judge_pair(rng, tag, matching=False)
            assert not pair.correct and "is correct" not in pair.verdict
            assert pair.verdict.startswith(("There is no", "There should be", "The ")) or " should be " in pair.verdict
        assert judge_pair(rng, tag, matching=True).correct


def test_referring_expressions_pick_one_object() -> None:
    red = [Shape("circle", "red", (4, 24, 20, 40)), Shape("circle", "red", (40, 24, 56, 40)),
           Shape("square", "blue", (24, 4, 36, 16))]
    scene = Scene(64, tuple(red))
    assert refer(scene, 2) == "the square"
    assert refer(scene, 0) == "the red circle left of the square"
    assert refer(scene, 1) == "the red circle right of the square"
    assert grounding_answer(scene, 2) == "<LOC_BEGIN><LOC_384><LOC_64><LOC_576><LOC_256><LOC_END>"


def test_questions_have_true_answers() -> None:
    scene = Scene(64, (Shape("circle", "red", (4, 4, 28, 28)), Shape("square", "blue", (40, 40, 56, 56))))
    qa = {q.kind: q for q in questions(scene, np.random.default_rng(0))}
    assert qa["color"].answer in ("red", "blue")
    assert qa["larger"].answer == "circle"
    assert qa["choice"].answer == "B"
    count = qa["count"]
    assert count.answer == str(len(scene.of_kind(count.question.split()[2][:-1])))
    assert layout_text(scene).startswith("Sure I should place the objects in the following manner <box_p> red circle")


@pytest.mark.parametrize("op", OPERATIONS)
def test_edits_round_trip_through_their_instruction(op: str) -> None:
    rng = np.random.default_rng(9)
    made = 0
    for _ in range(20):
        edit = sample_edit(rng, sample_scene(rng, 64), op)
        if edit is None:
            continue
        made += 1
        assert parse_instruction(edit.instruction) == edit.spec
        assert outcome(edit.spec, edit.source.objects, edit.target.objects).done
        assert not outcome(edit.spec, edit.source.objects, edit.source.objects).done
        seen = [s.shape() for s in detect(edit.target.image())]  # the detector agrees with the truth
        assert outcome(edit.spec, edit.source.objects, seen).done
    assert made >= 10


@pytest.mark.parametrize("op, verb", [("add", "adding"), ("remove", "removing"), ("recolor", "adjusting"),
                                      ("replace", "replacing")])
def test_an_edits_plan_boxes_the_object_it_changes(op: str, verb: str) -> None:
    """The release's edit-plan answer (LaVida-O `interleaved.py:245-273`): the operation's verb,
    then the one object the edit adds, removes or changes (as it is after, or as it was if
    removed), with its box on the 0-1024 LOC grid."""
    from lavida_bench.model.sampling.grounding import dequantize_box
    from lavida_bench.model.tokens import parse_boxes

    rng = np.random.default_rng(10)
    edits = [e for e in (sample_edit(rng, sample_scene(rng, 64), op) for _ in range(12)) if e is not None]
    assert len(edits) >= 6
    for edit in edits:
        head = f"Sure I should consider {verb} the objects in these locations : <box_p> "
        changed = set(edit.source.objects) ^ set(edit.target.objects)
        shown = next(o for o in changed if (o in edit.target.objects) == (op != "remove"))
        plan = edit.plan()
        assert plan.startswith(head + f"{shown.color} {shown.kind} </box_p>") and plan.count("<box_p>") == 1
        assert [dequantize_box(b, 64, 64, "per_axis") for b in parse_boxes(plan)] == [
            pytest.approx(shown.box, abs=0.1)]


def test_objects_sit_on_the_code_grid() -> None:
    """At 64 px every object is a 12 px box starting at 2, 18, 34 or 50: inside one 16 px cell,
    which is 2x2 VQ codes of 8 px and one LLM position."""
    from lavida_bench.world.scene import grid_boxes

    rng = np.random.default_rng(9)
    for _ in range(50):
        for o in sample_scene(rng, 64).objects:
            x0, y0, x1, y1 = o.box
            assert o.box in grid_boxes(64) and x1 - x0 == y1 - y0 == 12
            assert x0 // 16 == (x1 - 1) // 16 and y0 // 16 == (y1 - 1) // 16 and x0 % 16 == y0 % 16 == 2
