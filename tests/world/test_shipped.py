"""The shipped micro model (lavida_bench/world/weights) does what its measured rates say.

Each test runs the harness's pipeline on a small seeded set and checks a count against a
threshold set below the count measured on that set and on a larger one, and above what the same
command's under-trained weights (`early/`, step 600 of its grounding-only first stage) reach;
each docstring gives the figures (docs/benchmarks.md, "Planned edits shipped, and 32 drawing
steps", where the weights shipped before these are compared too).
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from lavida_bench.api import Options, Request
from lavida_bench.demo import WEIGHTS
from lavida_bench.world.detect import detect
from lavida_bench.tasks.refcoco import box_iou
from lavida_bench.world.language import geneval_caption
from lavida_bench.world.micro import WORLD_SIDE, image_options, micro_pipeline
from lavida_bench.world.run import weights_fingerprint
from lavida_bench.world.scene import sample_scene
from lavida_bench.world.verdicts import PASS_PHRASE, judge_pair


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    return micro_pipeline(WEIGHTS / "checkpoint")


@pytest.mark.parametrize("folder", ["checkpoint", "early"])
def test_the_shipped_weights_are_the_recorded_ones(folder: str) -> None:
    record = json.loads((WEIGHTS / "train.json").read_text())
    assert weights_fingerprint(WEIGHTS / folder) == record["fingerprint"][folder]
    provenance = json.loads((WEIGHTS / folder / "provenance.json").read_text())
    assert provenance["world"] == "synthetic world" and provenance["seed"] == record["settings"]["seed"]


def test_one_step_grounding_finds_the_only_object(pipe) -> None:
    """Measured: 12/12 here and 48/48 on 48 other scenes; the early weights 7/12 and 27/48."""
    rng = np.random.default_rng(14)
    scenes = [sample_scene(rng, WORLD_SIDE, [(None, None)]) for _ in range(12)]
    results = pipe.ground([Request(f"s{i}", "ground", f"the {s.objects[0].kind}", [s.image()], Options(steps=1))
                           for i, s in enumerate(scenes)])
    hits = sum(bool(r.boxes) and box_iou(r.boxes[0], s.objects[0].box) >= 0.5 for r, s in zip(results, scenes))
    assert hits >= 11


def test_one_step_grounding_beats_chance_on_scenes_of_one_to_four_objects(pipe) -> None:
    """Measured P@0.5: 0.75 here (n=24), 0.79 on 96 other expressions (the weights shipped before
    these: 0.63 and 0.67); early weights 0.33 and 0.23; a random cell of 16 about 0.06. Issue 17's
    0.9 is not reached."""
    from lavida_bench.world.evaluate import grounding_p50

    assert grounding_p50(pipe, np.random.default_rng(11), 24) >= 0.6


def test_four_grounding_steps_keeping_committed_tokens_are_no_worse_than_one(pipe) -> None:
    """Measured P@0.5 on this set: 1 step 0.75, 4 steps 0.75 (on 96 other expressions 0.79 and
    0.80); 4 steps with the release's answer (the last pass at every slot) 0.00 and 0.00."""
    from lavida_bench.world.evaluate import grounding_p50

    one = grounding_p50(pipe, np.random.default_rng(11), 24, Options(steps=1))
    four = grounding_p50(pipe, np.random.default_rng(11), 24, Options(steps=4, grounding_output="committed"))
    assert four >= one


def red_circles(pipe, seeds: range, plan: bool = False) -> list[list]:
    results = pipe.generate([Request(f"r{i}", "generate", "a photo of a red circle", options=image_options(plan=plan),
                                     seed=i) for i in seeds])
    return [[s.shape() for s in detect(r.image)] for r in results]


@pytest.fixture(scope="module")
def unplanned_red_circles(pipe) -> list[list]:
    """What the detector finds in 12 plain drawings of "a red circle" (seeds 0-11), drawn once."""
    return red_circles(pipe, range(12))


def test_text_to_image_draws_objects(unplanned_red_circles) -> None:
    """Measured: some object in 11/12 images here and 48/48 with seeds 100-147; early weights
    0/12 and 0/48."""
    assert sum(bool(found) for found in unplanned_red_circles) >= 9


def red_circles_found(found: list[list]) -> int:
    return sum(any(s.kind == "circle" and s.color == "red" for s in f) for f in found)


def test_a_red_circle_is_drawn_most_of_the_time(unplanned_red_circles) -> None:
    """Issue 17's "a red circle ... most of the time". Measured: a red circle in 10/12 images here
    and 43/48 with seeds 100-147 (the weights shipped before these: 2/12 and 10/48, mostly red
    squares); early weights 0/12 and 0/48."""
    assert red_circles_found(unplanned_red_circles) >= 7


def test_a_red_circle_is_drawn_most_of_the_time_after_a_plan(pipe) -> None:
    """The plan names the shape, and the drawing follows it. Measured: a red circle in 10/12
    planned images here and 38/48 with seeds 100-147 (the weights shipped before these: 6/12 and
    31/48); early weights 0/12 and 0/48."""
    assert red_circles_found(red_circles(pipe, range(12), plan=True)) >= 7


def test_the_judge_rejects_a_wrong_image_more_often_than_a_right_one(pipe) -> None:
    """Decoded as the reflection loop decodes it. Measured on this set: passes 16/16 matching and
    4/16 wrong `colors` images (on 48 pairs of every tag: 1.00 and 0.17); the early weights pass
    none."""
    rng = np.random.default_rng(12)
    pairs = [judge_pair(rng, "colors", bool(i % 2), WORLD_SIDE) for i in range(32)]
    verdicts, _ = pipe.reflection.verdicts([p.caption.text for p in pairs], [p.shown.image() for p in pairs],
                                           list(range(32)))
    passed: dict[bool, list[bool]] = {True: [], False: []}
    for p, v in zip(pairs, verdicts):
        passed[p.correct].append(PASS_PHRASE in v)
    assert np.mean(passed[True]) >= np.mean(passed[False]) + 0.5


def test_questions_in_the_benchmark_tasks_phrasings_are_answered(pipe) -> None:
    """Asked as the MMMU and ChartQA tasks ask (lmms-eval's formats). Measured on these 16 scenes:
    16/16 letters right; 16/16 ChartQA-phrased questions answered, 15/16 right. On 32 other scenes
    32/32 and 31/32 (every one answered). The early weights answer none."""
    from lavida_bench.tasks import chartqa, mmmu
    from lavida_bench.world.fixtures import MMMU_CHOICES, MMMU_QUESTION
    from lavida_bench.world.language import questions

    rng = np.random.default_rng(15)
    scenes = [sample_scene(rng, WORLD_SIDE) for _ in range(16)]
    multiple_choice = mmmu.build_prompt(MMMU_QUESTION, list(MMMU_CHOICES), "multiple-choice")
    letters = pipe.understand([Request(f"m{i}", "understand", multiple_choice, [s.image()], Options(max_new_tokens=16))
                               for i, s in enumerate(scenes)])
    assert sum(r.text.strip() == "ABCD"[len(s.objects) - 1] for r, s in zip(letters, scenes)) >= 14
    asked = [next(q for q in questions(s, rng) if q.kind in ("count", "color")) for s in scenes]
    answers = pipe.understand([Request(f"c{i}", "understand", chartqa.build_prompt(q.question), [s.image()],
                                       Options(max_new_tokens=16)) for i, (q, s) in enumerate(zip(asked, scenes))])
    assert sum(bool(r.text.strip()) for r in answers) >= 14
    assert sum(r.text.strip() == q.answer for r, q in zip(answers, asked)) >= 13


def asked_of_kind(kind: str, seed: int, n: int) -> list[tuple]:
    """`n` scenes with a question of `kind` about each (the world's own phrasing)."""
    from lavida_bench.world.language import questions

    rng, asked = np.random.default_rng(seed), []
    while len(asked) < n:
        scene = sample_scene(rng, WORLD_SIDE)
        found = [q for q in questions(scene, rng) if q.kind == kind]
        if found:
            asked.append((found[0], scene))
    return asked


@pytest.mark.parametrize("kind, least", [("color", 14), ("count", 13)])
def test_colour_and_count_questions_are_answered_right(pipe, kind: str, least: int) -> None:
    """Issue 17's 0.9. Measured on these 16: colour 16/16, count 14/16; on 48 others (seed 116)
    48/48 and 45/48; the early weights 0/16 and 0/16."""
    asked = asked_of_kind(kind, 16, 16)
    answers = pipe.understand([Request(f"q{i}", "understand", q.question, [s.image()], Options(max_new_tokens=16))
                               for i, (q, s) in enumerate(asked)])
    assert sum(a.text.strip() == q.answer for (q, _), a in zip(asked, answers)) >= least


def test_plans_lay_out_one_box_per_counted_object_at_times(pipe) -> None:
    """A regression of these weights: their counting plans often add a box or repeat one.
    Measured: 3/8 here, 4/12 on 12 other counting prompts (the weights shipped before these: 8/8
    and 12/12); early weights 0/8 and 0/12."""
    rng = np.random.default_rng(13)
    captions = [geneval_caption(rng, "counting", WORLD_SIDE) for _ in range(8)]
    results = pipe.generate([Request(f"p{i}", "generate", c.text, options=image_options(plan=True), seed=i)
                             for i, c in enumerate(captions)])
    right = sum(len(r.trace.plan_boxes or []) == c.meta["include"][0]["count"] for r, c in zip(results, captions))
    assert right >= 2


def plan_phrases(plan: str) -> list[list[str]]:
    """The words of each `<box_p>` phrase of a plan, in order."""
    from lavida_bench.model.tokens import SPECIAL_TOKENS

    opening, closing = (re.escape(SPECIAL_TOKENS[k]) for k in ("box_open", "box_close"))
    return [p.split() for p in re.findall(f"{opening}(.*?){closing}", plan)]


def plan_names_the_prompts_objects(plan: str, n_boxes: int, meta: dict) -> bool:
    """Each `<box_p>` phrase ends in a class the prompt asks for, as many of each as it asks, every
    colour it asks for is named, and there is one box per object."""
    from collections import Counter

    phrases = plan_phrases(plan)
    wanted = Counter()
    for clause in meta["include"]:
        wanted[clause["class"]] += clause["count"]
    colours = [c["color"] for c in meta["include"] if "color" in c]
    return (Counter(p[-1] for p in phrases if p) == wanted and n_boxes == sum(wanted.values())
            and all(any(colour in p for p in phrases) for colour in colours))


def test_plans_name_the_prompts_objects(pipe) -> None:
    """Single object, two objects, counting and colour prompts. Measured: 11/12 here and 42/48 on
    48 other prompts (the weights shipped before these: 12/12 and 48/48); early weights 0/12 and
    0/48."""
    rng = np.random.default_rng(13)
    tags = ("single_object", "two_object", "counting", "colors")
    captions = [geneval_caption(rng, tags[i % 4], WORLD_SIDE) for i in range(12)]
    results = pipe.generate([Request(f"p{i}", "generate", c.text, options=image_options(plan=True), seed=i)
                             for i, c in enumerate(captions)])
    named = sum(plan_names_the_prompts_objects(r.trace.plan or "", len(r.trace.plan_boxes), c.meta)
                for r, c in zip(results, captions))
    assert named >= 10


def planned_objects_drawn(pipe, seed: int, n: int) -> tuple[int, int]:
    """Over `n` two-object, counting and position prompts drawn with planning: (planned boxes in
    which the detector finds an object of the box's kind at IoU >= 0.5, planned boxes)."""
    rng = np.random.default_rng(seed)
    tags = ("two_object", "counting", "position")
    captions = [geneval_caption(rng, tags[i % 3], WORLD_SIDE) for i in range(n)]
    results = pipe.generate([Request(f"d{i}", "generate", c.text, options=image_options(plan=True), seed=i)
                             for i, c in enumerate(captions)])
    drawn = planned = 0
    for r in results:
        kinds = [words[-1] if words else "" for words in plan_phrases(r.trace.plan or "")]
        seen = detect(r.image)
        planned += len(r.trace.plan_boxes)
        if len(kinds) == len(r.trace.plan_boxes):  # a plan whose phrases and boxes do not pair counts as undrawn
            drawn += sum(any(s.kind == kind and box_iou(s.box, box) >= 0.5 for s in seen)
                         for kind, box in zip(kinds, r.trace.plan_boxes))
    return drawn, planned


def test_planned_drawing_puts_each_planned_object_in_its_box(pipe) -> None:
    """What makes planning help (docs/benchmarks.md, "Drawing follows the plan once trained on it
    alone"). Measured: 23 of 32 planned boxes drawn here, 88 of 126 on 48 other prompts (seed
    117); the weights shipped before these 24/29 and 89/115 (and before them 25/29 and 94/115);
    the early weights 0/192 and 0/765."""
    drawn, planned = planned_objects_drawn(pipe, 17, 12)
    assert planned >= 12 and drawn >= 0.65 * planned


def test_planned_edits_are_done_most_of_the_time_and_more_often_than_plain_ones(pipe) -> None:
    """The release plans edits too (LaVida-O `predict_t2i_edit.py` `create_plan_edit`): the plan's
    box tells the drawing which cell to change. Measured: 8/12 edits done after a plan here, 3/12
    without; on 48 others (seed 117) 41/48 and 20/48; on 144 (seeds 5-7) 116/144 and 53/144."""
    from lavida_bench.world.evaluate import edit_success

    planned = edit_success(pipe, np.random.default_rng(17), 12, plan=True)["overall"]["rate"]
    plain = edit_success(pipe, np.random.default_rng(17), 12)["overall"]["rate"]
    assert planned >= 6 / 12 and planned >= plain + 3 / 12
