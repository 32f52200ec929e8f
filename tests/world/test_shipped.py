"""The shipped micro model (lavida_bench/world/weights) does what its measured rates say.

Each test runs the harness's pipeline on a small seeded set and checks a count against a
threshold set below the count measured on that set and on a larger one, and above what the same
command's under-trained weights (`early/`, step 600) reach; each docstring gives the figures
(docs/benchmarks.md, "The shipped micro model" and "The benchmarks' phrasings"). One target of issue 17, the judge, is not
reached by these weights; its test is a strict expected failure, so it turns red the day a
retrained model reaches it and the marker must go.
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
    """Measured: 12/12 here (before the tuning stage 12/12, and 48/48 on 48 other scenes); the
    early weights 0/12."""
    rng = np.random.default_rng(14)
    scenes = [sample_scene(rng, WORLD_SIDE, [(None, None)]) for _ in range(12)]
    results = pipe.ground([Request(f"s{i}", "ground", f"the {s.objects[0].kind}", [s.image()], Options(steps=1))
                           for i, s in enumerate(scenes)])
    hits = sum(bool(r.boxes) and box_iou(r.boxes[0], s.objects[0].box) >= 0.5 for r, s in zip(results, scenes))
    assert hits >= 11


def test_one_step_grounding_beats_chance_on_scenes_of_one_to_four_objects(pipe) -> None:
    """Measured P@0.5: 0.42 here (n=24), 0.31 on 96 other expressions; early weights 0.00;
    a random cell of 16 about 0.06. Issue 17's target ("most", and 0.9) is not reached."""
    from lavida_bench.world.evaluate import grounding_p50

    assert grounding_p50(pipe, np.random.default_rng(11), 24) >= 0.2


def test_four_grounding_steps_keeping_committed_tokens_are_no_worse_than_one(pipe) -> None:
    """Measured P@0.5 on this set: 1 step 0.42, 4 steps 0.46 (before the tuning stage 0.50, and
    0.46 against 0.30 on 96 other expressions); 4 steps with the release's answer (the last pass
    at every slot) 0.08."""
    from lavida_bench.world.evaluate import grounding_p50

    one = grounding_p50(pipe, np.random.default_rng(11), 24, Options(steps=1))
    four = grounding_p50(pipe, np.random.default_rng(11), 24, Options(steps=4, grounding_output="committed"))
    assert four >= one


def red_circles(pipe, seeds: range) -> list[list]:
    results = pipe.generate([Request(f"r{i}", "generate", "a photo of a red circle", options=image_options(), seed=i)
                             for i in seeds])
    return [[s.shape() for s in detect(r.image)] for r in results]


def test_text_to_image_draws_objects(pipe) -> None:
    """Measured: some object in 11/12 images here and 48/48 with seeds 100-147; early weights
    1/12 and 7/48."""
    assert sum(bool(found) for found in red_circles(pipe, range(12))) >= 10


def test_a_red_circle_is_drawn_as_one_most_of_the_time(pipe) -> None:
    """Measured: a red circle in 8/12 images here and 31/48 with seeds 100-147 (before the tuning
    stage 9/12 and 33/48); early weights 0/12 and 1/48."""
    found = red_circles(pipe, range(12))
    assert sum(any(s.kind == "circle" and s.color == "red" for s in f) for f in found) >= 7


@pytest.mark.xfail(strict=True, reason="not reached: the judge passes right and wrong images alike")
def test_the_judge_rejects_a_wrong_image_more_often_than_a_right_one(pipe) -> None:
    """Decoded as the reflection loop decodes it. Measured on this set: passes 16/16 matching and
    16/16 wrong `colors` images (on 48 pairs of every tag: 1.00 and 1.00; before the tuning
    stage 0.83 and 0.75)."""
    rng = np.random.default_rng(12)
    pairs = [judge_pair(rng, "colors", bool(i % 2), WORLD_SIDE) for i in range(32)]
    verdicts, _ = pipe.reflection.verdicts([p.caption.text for p in pairs], [p.shown.image() for p in pairs],
                                           list(range(32)))
    passed: dict[bool, list[bool]] = {True: [], False: []}
    for p, v in zip(pairs, verdicts):
        passed[p.correct].append(PASS_PHRASE in v)
    assert np.mean(passed[True]) > np.mean(passed[False]) + 0.1


def test_questions_in_the_benchmark_tasks_phrasings_are_answered(pipe) -> None:
    """Asked as the MMMU and ChartQA tasks ask (lmms-eval's formats). Measured on these 16 scenes:
    16/16 letters right; 16/16 ChartQA-phrased questions answered, 9/16 right. On 32 other scenes
    32/32 and 12/32 (every one answered). Before the tuning stage the same weights got 10/32 letters
    (21 empty) and answered none of the ChartQA-phrased questions; the early weights get 5/16
    letters and answer none."""
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
    assert sum(r.text.strip() == q.answer for r, q in zip(answers, asked)) >= 5


def test_plans_lay_out_one_box_per_counted_object(pipe) -> None:
    """Measured: 8/8 here, 12/12 on 12 other counting prompts; early weights 4/8 and 6/12."""
    rng = np.random.default_rng(13)
    captions = [geneval_caption(rng, "counting", WORLD_SIDE) for _ in range(8)]
    results = pipe.generate([Request(f"p{i}", "generate", c.text, options=image_options(plan=True), seed=i)
                             for i, c in enumerate(captions)])
    right = sum(len(r.trace.plan_boxes or []) == c.meta["include"][0]["count"] for r, c in zip(results, captions))
    assert right >= 7


def plan_names_the_prompts_objects(plan: str, n_boxes: int, meta: dict) -> bool:
    """Each `<box_p>` phrase ends in a class the prompt asks for, as many of each as it asks, every
    colour it asks for is named, and there is one box per object."""
    from collections import Counter

    from lavida_bench.model.tokens import SPECIAL_TOKENS

    opening, closing = (re.escape(SPECIAL_TOKENS[k]) for k in ("box_open", "box_close"))
    phrases = [p.split() for p in re.findall(f"{opening}(.*?){closing}", plan)]
    wanted = Counter()
    for clause in meta["include"]:
        wanted[clause["class"]] += clause["count"]
    colours = [c["color"] for c in meta["include"] if "color" in c]
    return (Counter(p[-1] for p in phrases if p) == wanted and n_boxes == sum(wanted.values())
            and all(any(colour in p for p in phrases) for colour in colours))


def test_plans_name_the_prompts_objects(pipe) -> None:
    """Single object, two objects, counting and colour prompts. Measured: 9/12 here and 32/48 on
    48 other prompts (before the tuning stage 9/12 and 29/48); early weights 1/12 and 2/48;
    decoded against a prompt cache (the release's `prefix_lm=True`, which this model was not
    trained for) 7/48 before the tuning stage."""
    rng = np.random.default_rng(13)
    tags = ("single_object", "two_object", "counting", "colors")
    captions = [geneval_caption(rng, tags[i % 4], WORLD_SIDE) for i in range(12)]
    results = pipe.generate([Request(f"p{i}", "generate", c.text, options=image_options(plan=True), seed=i)
                             for i, c in enumerate(captions)])
    named = sum(plan_names_the_prompts_objects(r.trace.plan or "", len(r.trace.plan_boxes), c.meta)
                for r, c in zip(results, captions))
    assert named >= 6
