"""Shared fixtures for the pipeline tests: one tiny checkpoint (release layout) and one pipeline.

The pipeline runs at 64 px: the tiny VQ downsamples by 16 (4x4 codes) and the generation branch's
2x2 conv makes that 2x2 = 4 LLM positions per image, so every draw stays cheap on a CPU.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from lavida_bench.model.checkpoint import Checkpoint, load_checkpoint
from lavida_bench.model.pipeline import LavidaPipeline
from lavida_bench.model.tiny import make_tiny_checkpoint
from PIL import Image

RESOLUTION = 64
N_POS = 4  # (64 / 16)^2 VQ codes -> 2x2 LLM positions after the 2x2 downsample (LaVida-O llava_arch.py:235-247)
STEPS = 4


@pytest.fixture(scope="session")
def tiny_ckpt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("pipeline_ckpt"), seed=0)


@pytest.fixture(scope="session")
def ck(tiny_ckpt_dir: Path) -> Checkpoint:
    return load_checkpoint(tiny_ckpt_dir)


@pytest.fixture(scope="session")
def pipe(ck: Checkpoint) -> LavidaPipeline:
    """Shared by every test; tests patch it only through `monkeypatch`, which undoes the patch."""
    return LavidaPipeline(ck, resolution=RESOLUTION)


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def picture(width: int, height: int, seed: int) -> Image.Image:
    """A deterministic noise image (distinct per seed) for understanding/grounding/editing inputs."""
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (height, width, 3), generator=gen, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


class ForwardLog:
    """Records every call of `pipe.net.forward` (its embeds and keyword arguments), then runs it."""

    def __init__(self, forward: Callable[..., Any]):
        self.forward = forward
        self.calls: list[tuple[torch.Tensor, dict[str, Any]]] = []

    def __call__(self, embeds: torch.Tensor, **kwargs: Any) -> Any:
        self.calls.append((embeds.clone(), dict(kwargs)))
        return self.forward(embeds, **kwargs)

    def __len__(self) -> int:
        return len(self.calls)


@pytest.fixture
def forwards(pipe: LavidaPipeline, monkeypatch: pytest.MonkeyPatch) -> ForwardLog:
    """Count the network's forward passes: `nn.Module.__call__` looks `forward` up on the instance."""
    log = ForwardLog(pipe.net.forward)
    monkeypatch.setattr(pipe.net, "forward", log)
    return log


class RowLog:
    """Records every prompt string (and its image features) the pipeline hands to `builder.row`,
    and the row built from it."""

    def __init__(self, row: Callable[..., Any]):
        self.row = row
        self.prompts: list[str] = []
        self.features: list[list[torch.Tensor]] = []
        self.built: list[Any] = []  # the Rows returned

    def __call__(self, prompt: str, image_features: list[torch.Tensor]) -> Any:
        self.prompts.append(prompt)
        self.features.append(list(image_features))
        self.built.append(self.row(prompt, image_features))
        return self.built[-1]


@pytest.fixture
def rows(pipe: LavidaPipeline, monkeypatch: pytest.MonkeyPatch) -> RowLog:
    log = RowLog(pipe.builder.row)
    monkeypatch.setattr(pipe.builder, "row", log)
    return log
