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
    def understand(self, requests):
        return [Result(text="The image is correct.") for _ in requests]


def test_vq_recall_of_perfect_and_useless_tokenizers() -> None:
    assert vq_recall(ImageVQ(True), np.random.default_rng(0), 10) == 1.0
    assert vq_recall(ImageVQ(False), np.random.default_rng(0), 10) == 0.0


def test_a_judge_that_always_approves_is_right_half_the_time() -> None:
    """judge_accuracy alternates wrong and matching images."""
    assert judge_accuracy(SayCorrect(), np.random.default_rng(0), 8) == 0.5
