"""Pretraining of the micro model's vision side: the stand-in for the release's pretrained SigLIP.

The release starts from a SigLIP tower that already tells objects apart (LaVida-O builds on
`google/siglip-so400m-patch14-384`). The micro tower starts from random weights, and the
masked-diffusion loss alone gives it no direct reason to encode an object's shape: a question
about "the circle" can only pick the circle out once the features say which cell holds one
(docs/benchmarks.md, "The answer padding", last table). This stage trains the SigLIP tower, the
resampler and the projector to name, in each feature cell, the object that covers most of it
(none when no object covers a quarter of the cell), through a linear head that is then thrown
away.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lavida_bench.backends.shapes import COLORS, SHAPES
from lavida_bench.model.network import LavidaNetwork
from lavida_bench.model.params import VISION
from lavida_bench.model.vision import anyres_tiles
from lavida_bench.world.micro import WORLD_SIDE
from lavida_bench.world.scene import Scene, sample_scene

CLASSES = [(kind, color) for kind in SHAPES for color in COLORS]  # + one "no object" class
VISION_PREFIXES = tuple(f"model.{part}" for part in VISION)  # the vision side, as the parameter count names it
BATCH = 32
LR = 1e-3
MIN_COVER = 1 / 4  # share of a cell an object must cover to name it


def cell_targets(scene: Scene, cells: int) -> Tensor:
    """[cells * cells] class ids: per feature cell (row-major), the object covering most of it."""
    size = scene.side / cells
    best = np.zeros((cells, cells))
    target = torch.full((cells, cells), len(CLASSES))
    for o in scene.objects:
        for row in range(cells):
            for col in range(cells):
                w = min(o.box[2], (col + 1) * size) - max(o.box[0], col * size)
                h = min(o.box[3], (row + 1) * size) - max(o.box[1], row * size)
                if w > 0 and h > 0 and w * h >= MIN_COVER * size * size and w * h > best[row, col]:
                    best[row, col] = w * h
                    target[row, col] = CLASSES.index((o.kind, o.color))
    return target.flatten()


def pretrain_vision(net: LavidaNetwork, steps: int, seed: int,
                    log: Callable[[int, dict[str, float]], None] | None = None) -> float:
    """Train the vision side for `steps` batches of 32 world images; returns the mean cell
    accuracy of the last (up to) 50 batches. Only the vision tower, resampler and projector change."""
    rng = np.random.default_rng(seed)
    head = torch.nn.Linear(net.config.d_model, len(CLASSES) + 1)
    params = [p for n, p in net.named_parameters() if n.startswith(VISION_PREFIXES)]
    opt = torch.optim.AdamW(params + list(head.parameters()), lr=LR)
    pinpoints, tile = net.config.image_grid_pinpoints, net.config.vision.image_size
    accuracies: list[float] = []
    for step in range(1, steps + 1):
        scenes = [sample_scene(rng, WORLD_SIDE) for _ in range(BATCH)]
        pixels = torch.cat([anyres_tiles(s.image(), pinpoints, tile).pixels[:1] for s in scenes])  # overview tile
        feats = net.encode_tiles(pixels)
        cells = int(round(feats.shape[1] ** 0.5))
        target = torch.cat([cell_targets(s, cells) for s in scenes])
        logits = head(feats).reshape(-1, len(CLASSES) + 1)
        loss = F.cross_entropy(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        accuracies.append(float((logits.argmax(-1) == target).float().mean()))
        if log is not None:
            log(step, {"loss": float(loss.detach()), "cell_accuracy": accuracies[-1]})
    return float(np.mean(accuracies[-50:])) if accuracies else 0.0
