"""The shapes world and the stand-in backends: hand-made scenes with known truth, and images
that are not of the world (noise, a random-weight model's output) on which they find nothing."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lavida_bench.backends import Backends, BackendsConfig
from lavida_bench.backends.shapes import COLORS, SHAPES, Shape, draw_shapes

SCENE = [
    Shape("circle", "red", (10, 10, 40, 40)),
    Shape("square", "blue", (60, 10, 90, 40)),
    Shape("triangle", "black", (20, 50, 60, 90)),
    Shape("circle", "red", (90, 60, 120, 90)),
]


@pytest.fixture(scope="module")
def backends() -> Backends:
    return Backends(BackendsConfig.standins())


@pytest.fixture(scope="module")
def scene() -> Image.Image:
    return draw_shapes((128, 96), SCENE)


def test_colors_are_genevals_ten_in_order() -> None:
    assert list(COLORS) == ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
                            "black", "white"]
    assert SHAPES == ("circle", "square", "triangle")


def test_draw_fills_exactly_the_box() -> None:
    image = np.asarray(draw_shapes((20, 10), [Shape("square", "green", (2, 3, 6, 8))]))
    painted = (image != 255).any(-1)
    assert painted.sum() == 4 * 5
    assert painted[3:8, 2:6].all()
    assert tuple(image[3, 2]) == COLORS["green"]


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        Shape("hexagon", "red", (0, 0, 5, 5))
    with pytest.raises(ValueError, match="color"):
        Shape("circle", "teal", (0, 0, 5, 5))
    with pytest.raises(ValueError, match="outside"):
        draw_shapes((10, 10), [Shape("circle", "red", (0, 0, 11, 5))])


def test_detector_finds_every_shape_with_its_box(backends: Backends, scene: Image.Image) -> None:
    dets = backends.detector.detect(scene)
    got = sorted((d.label, d.box) for d in dets)
    want = sorted((s.kind, tuple(float(v) for v in s.box)) for s in SCENE)
    assert got == want
    for d in dets:
        assert d.score > 0.9  # passes even GenEval's counting threshold
        assert d.mask.shape == (96, 128) and d.mask.dtype == bool
    square = next(d for d in dets if d.label == "square")
    assert square.mask.sum() == 30 * 30


def test_detector_on_other_backgrounds_and_noise(backends: Backends) -> None:
    grey_bg = draw_shapes((64, 64), [Shape("square", "white", (8, 8, 40, 40))], background=(90, 90, 90))
    [det] = backends.detector.detect(grey_bg)
    assert det.label == "square" and det.box == (8.0, 8.0, 40.0, 40.0)
    assert backends.detector.detect(Image.new("RGB", (32, 32), (255, 255, 255))) == []
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert backends.detector.detect(noise) == []  # strict: no detection at any score


def test_detector_finds_nothing_in_a_random_weight_models_output(backends: Backends) -> None:
    """Codes drawn at random and decoded by the tiny model's seeded random VQ: what a
    random-weight Lavida-O's image generation produces."""
    import torch

    from lavida_bench.model.tiny import make_tiny

    _, vq, _ = make_tiny(seed=3)
    codes = torch.randint(0, vq.codebook_size, (4, 8 * 8), generator=torch.Generator().manual_seed(0))
    for image in vq.decode(codes, 8):
        assert backends.detector.detect(image) == []
        assert backends.vqa.answer(image, "Is there a circle?") == "no"


def test_color_classifier_uses_non_grey_pixels(backends: Backends) -> None:
    # a GenEval-style crop: the object on #999 grey, mostly grey
    crop = np.full((20, 20, 3), 153, dtype=np.uint8)
    crop[5:10, 5:10] = COLORS["orange"]
    black = np.full((20, 20, 3), 153, dtype=np.uint8)
    black[:3, :3] = 0
    crops = [Image.fromarray(crop), Image.fromarray(black), Image.new("RGB", (4, 4), (250, 250, 250))]
    assert backends.color.classify(crops, list(COLORS)) == ["orange", "black", "white"]
    # only the offered names are candidates: orange is nearest to yellow among these two
    assert backends.color.classify(crops[:1], ["yellow", "blue"], obj="cup") == ["yellow"]
    with pytest.raises(ValueError, match="teal"):
        backends.color.classify(crops[:1], ["teal"])


@pytest.mark.parametrize("question, answer", [
    ("Is there a red circle?", "yes"),
    ("Are there two red circles?", "yes"),
    ("Are there 3 red circles?", "no"),
    ("Is there a blue circle?", "no"),
    ("Is there a square?", "yes"),
    ("Is there a triangle and a blue square?", "yes"),
    ("Is the blue square to the right of the black triangle?", "yes"),
    ("Is the blue square below the black triangle?", "no"),
    ("Is the black triangle below the blue square?", "yes"),
    ("Is the black triangle left of the red circle?", "yes"),  # one of the two red circles
    ("Is anything purple?", "no"),
    ("Is anything red?", "yes"),
    ("Is there a cube?", "no"),
    ("Is the square blue?", "yes"),
    ("Is the square red?", "no"),
    ("Is the triangle black and small?", "yes"),
])
def test_vqa_rules(backends: Backends, scene: Image.Image, question: str, answer: str) -> None:
    assert backends.vqa.answer(scene, question) == answer


def test_inception_standin_is_deterministic_and_sensible(backends: Backends, scene: Image.Image) -> None:
    other = draw_shapes((128, 96), [Shape("square", "green", (0, 0, 128, 96))])
    feats = backends.inception.features([scene, scene, other])
    assert feats.shape == (3, 2048) and feats.dtype == np.float64
    assert np.array_equal(feats[0], feats[1])
    assert not np.allclose(feats[0], feats[2])
    assert np.array_equal(Backends(BackendsConfig.standins()).inception.features([scene]), feats[:1])


RUBRIC = ("Compare the original and the edited image for the instruction: {}\n"
          "Style Fidelity: A number from 1 to 5.\nContent Preservation: <1-5>\nRendering Quality: 3")


def scores(reply: str) -> list[int]:
    return [int(line.split(": ")[1]) for line in reply.splitlines()[1:]]


def test_judge_reply_is_well_formed(backends: Backends, scene: Image.Image) -> None:
    edited = draw_shapes((128, 96), SCENE[1:])
    reply = backends.judge.judge("k", RUBRIC.format("Remove the black triangle."), [scene, edited])
    lines = reply.splitlines()
    assert lines[0].startswith("Brief reasoning: ")
    assert [line.split(": ")[0] for line in lines[1:]] == ["Style Fidelity", "Content Preservation",
                                                          "Rendering Quality"]
    assert reply == backends.judge.judge("k", RUBRIC.format("Remove the black triangle."), [scene, edited])


@pytest.mark.parametrize("instruction, edited, want", [
    # the triangle is gone and everything else stays: full marks
    ("Remove the black triangle.", [SCENE[0], SCENE[1], SCENE[3]], [5, 5, 5]),
    # nothing changed: not done
    ("Remove the black triangle.", SCENE, [1, 1, 1]),
    # the wrong object removed: not done
    ("Remove the black triangle.", [SCENE[0], SCENE[2], SCENE[3]], [1, 1, 1]),
    # recoloured as asked, in both phrasings
    ("Make the square green.", [SCENE[0], Shape("square", "green", SCENE[1].box), *SCENE[2:]], [5, 5, 5]),
    ("Change the square's color to green.", [SCENE[0], Shape("square", "green", SCENE[1].box), *SCENE[2:]],
     [5, 5, 5]),
    # recoloured to the wrong colour
    ("Make the square green.", [SCENE[0], Shape("square", "pink", SCENE[1].box), *SCENE[2:]], [1, 1, 1]),
    # replaced in place, keeping its colour
    ("Replace the triangle with a circle.", [*SCENE[:2], Shape("circle", "black", SCENE[2].box), SCENE[3]],
     [5, 5, 5]),
    # added, but a kept object went missing: done, preservation 3 of 4 -> 4
    ("Add a green square.", [*SCENE[:3], Shape("square", "green", (90, 60, 120, 90))], [5, 4, 5]),
])
def test_judge_checks_the_instructions_outcome(backends: Backends, scene: Image.Image, instruction: str,
                                              edited: list[Shape], want: list[int]) -> None:
    reply = backends.judge.judge("k", RUBRIC.format(instruction), [scene, draw_shapes((128, 96), edited)])
    assert scores(reply) == want, reply


def test_judge_compares_images_of_different_sizes(backends: Backends, scene: Image.Image) -> None:
    """The original at 128x96 and the edit at 256x192 (the model's resolution): same frame."""
    big = [Shape(s.kind, s.color, tuple(2 * v for v in s.box)) for s in SCENE if s.kind != "triangle"]
    edited = draw_shapes((256, 192), big)
    reply = backends.judge.judge("k", RUBRIC.format("Remove the black triangle."), [scene, edited])
    assert scores(reply) == [5, 5, 5]


def test_judge_refuses_noise_and_foreign_prompts(backends: Backends, scene: Image.Image) -> None:
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (96, 128, 3), dtype=np.uint8))
    assert scores(backends.judge.judge("k", RUBRIC.format("Remove the black triangle."), [scene, noise]))[0] == 1
    with pytest.raises(ValueError, match="no edit instruction"):
        backends.judge.judge("k", RUBRIC.format("Turn the photo into a watercolour."), [scene, scene])
    with pytest.raises(ValueError, match="original and the edited"):
        backends.judge.judge("k", RUBRIC.format("Remove the black triangle."), [scene])


def test_every_standin_is_labelled(backends: Backends) -> None:
    for kind in ("detector", "color", "vqa", "inception", "judge"):
        obj = getattr(backends, kind)
        assert obj.standin is True and obj.name == "standin"
