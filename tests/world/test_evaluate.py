"""The world's measures score known-good and known-bad stand-ins as they should."""
from __future__ import annotations

import numpy as np
from PIL import Image

from lavida_bench.api import Result
from lavida_bench.world.evaluate import judge_accuracy, vq_recall


class ImageVQ:
    """A 'VQ' whose codes are the image itself (perfect), or noise (useless)."""

    def __init__(self, perfect: bool):
        self.perfect = perfect

    def side(self, resolution: int) -> int:
        return resolution

    def encode(self, images, resolution):
        return images

    def decode(self, codes, side):
        noise = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
        return [im if self.perfect else Image.fromarray(noise) for im in codes]


class SayCorrect:
    """A judge that passes every image, behind the pipeline's `reflection.verdicts`."""

    @property
    def reflection(self):
        return self

    def verdicts(self, captions, images, seeds):
        return ["The image is correct." for _ in captions], 1


def test_vq_recall_of_perfect_and_useless_tokenizers() -> None:
    assert vq_recall(ImageVQ(True), np.random.default_rng(0), 10) == 1.0
    assert vq_recall(ImageVQ(False), np.random.default_rng(0), 10) == 0.0


def test_a_judge_that_always_approves_is_right_half_the_time() -> None:
    """judge_accuracy alternates wrong and matching images."""
    got = judge_accuracy(SayCorrect(), np.random.default_rng(0), 8)
    assert got == {"right": {"rate": 0.5, "n": 8}, "passes_matching": {"rate": 1.0, "n": 4},
                   "passes_wrong": {"rate": 1.0, "n": 4}}


class DrawTruth:
    """Generates, for each caption, the scene it was written from (or a blank canvas)."""

    def __init__(self, scenes: dict[str, object] | None):
        self.scenes = scenes

    def generate(self, requests):
        blank = Image.new("RGB", (64, 64), "white")
        return [Result(image=self.scenes[r.prompt].image() if self.scenes else blank) for r in requests]


def test_geneval_pass_reports_each_tag_with_its_n() -> None:
    from lavida_bench.backends import Backends, BackendsConfig
    from lavida_bench.world.evaluate import geneval_pass
    from lavida_bench.world.language import GENEVAL_TAGS, geneval_caption

    backends = Backends(BackendsConfig.standins())
    rng = np.random.default_rng(3)
    truth = {c.text: c.scene for c in (geneval_caption(rng, GENEVAL_TAGS[i % 6], 64) for i in range(12))}
    right = geneval_pass(DrawTruth(truth), backends, np.random.default_rng(3), 12)
    assert right["overall"] == {"rate": 1.0, "n": 12}
    assert {tag: right[tag]["n"] for tag in GENEVAL_TAGS} == dict.fromkeys(GENEVAL_TAGS, 2)
    blank = geneval_pass(DrawTruth(None), backends, np.random.default_rng(3), 12)
    assert blank["overall"] == {"rate": 0.0, "n": 12}


class Editor:
    """Returns each edit's target scene (perfect) or its source unchanged (does nothing)."""

    def __init__(self, perfect: bool):
        self.perfect = perfect

    def edit(self, requests):
        from lavida_bench.world.edits import random_edit
        from lavida_bench.world.micro import WORLD_SIDE

        rng = np.random.default_rng(5)  # the same draws as edit_success makes
        edits = [random_edit(rng, WORLD_SIDE) for _ in requests]
        return [Result(image=(e.target if self.perfect else e.source).image()) for e in edits]


def test_edit_success_of_a_perfect_editor_and_of_one_that_changes_nothing() -> None:
    from lavida_bench.world.evaluate import edit_success

    perfect = edit_success(Editor(True), np.random.default_rng(5), 16)
    assert perfect["overall"] == {"rate": 1.0, "n": 16}
    assert sum(v["n"] for k, v in perfect.items() if k != "overall") == 16
    assert edit_success(Editor(False), np.random.default_rng(5), 16)["overall"]["rate"] == 0.0


class BoxFirstObject:
    """A grounder that boxes the first object the detector finds, whatever the expression names:
    right in every one-object scene, right in a many-object scene only by luck."""

    def ground(self, requests):
        from lavida_bench.world.detect import detect

        return [Result(boxes=[list(detect(r.images[0])[0].box)]) for r in requests]


def test_grounding_is_split_by_the_scenes_object_count() -> None:
    from lavida_bench.world.evaluate import grounding_hits, grounding_p50, pooled

    hits = grounding_hits(BoxFirstObject(), np.random.default_rng(3), 40)
    assert sum(map(len, hits.values())) == 40
    assert set(hits) <= {"1 object", "2 objects", "3 objects", "4 objects"} and len(hits) > 2
    assert all(hits["1 object"])
    assert not all(hit for name, group in hits.items() if name != "1 object" for hit in group)
    assert grounding_p50(BoxFirstObject(), np.random.default_rng(3), 40) == pooled(hits)
    assert pooled({"a": [True, False, False], "b": [True]}) == 0.5


class BoxNamedKind:
    """A grounder that boxes the detected object of the kind its expression ("the circle") names."""

    def ground(self, requests):
        from lavida_bench.world.detect import detect

        return [Result(boxes=[list(next(s.box for s in detect(r.images[0]) if s.kind == r.prompt.split()[-1]))])
                for r in requests]


def test_grounding_swap_tells_a_grounder_that_reads_from_one_that_does_not() -> None:
    from lavida_bench.world.evaluate import grounding_swap

    ignores = grounding_swap(BoxFirstObject(), np.random.default_rng(4), 12)
    assert ignores == {"both_right": {"rate": 0.0, "n": 12}, "same_box": {"rate": 1.0, "n": 12}}
    reads = grounding_swap(BoxNamedKind(), np.random.default_rng(4), 12)
    assert reads == {"both_right": {"rate": 1.0, "n": 12}, "same_box": {"rate": 0.0, "n": 12}}


class BoxOnlyCircles(BoxNamedKind):
    """Boxes "the circle" and answers every other expression with no box."""

    def ground(self, requests):
        named = super().ground(requests)
        return [r if q.prompt.endswith("circle") else Result(boxes=[]) for r, q in zip(named, requests)]


def test_a_grounding_answer_without_a_box_is_a_miss_not_a_crash() -> None:
    from lavida_bench.world.evaluate import grounding_swap

    assert grounding_swap(BoxOnlyCircles(), np.random.default_rng(4), 12) == {
        "both_right": {"rate": 0.0, "n": 12}, "same_box": {"rate": 0.0, "n": 12}}
