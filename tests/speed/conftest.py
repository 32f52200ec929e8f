"""Shared fixtures for the speed-suite tests: one tiny random-weight pipeline at 64 px.

At 64 px the tiny VQ gives 4x4 = 16 codes (2x2 LLM positions), so 8 image steps reveal codes on
every step and a draw costs well under a second on a CPU. Torch runs single-threaded here: on a
shared 2-core machine, two BLAS threads contending with other processes are many times slower.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from lavida_bench.model.pipeline import LavidaPipeline

from lavida_bench.speed.random_model import random_pipeline

RESOLUTION = 64
STEPS = 8


@pytest.fixture(scope="session", autouse=True)
def _single_thread() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def pipe() -> LavidaPipeline:
    return random_pipeline("tiny", resolution=RESOLUTION, seed=0)
