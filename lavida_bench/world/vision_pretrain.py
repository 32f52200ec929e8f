"""Pretraining of the micro model's vision side: the stand-in for the release's pretrained SigLIP.

The release starts from a SigLIP tower that already tells objects apart (LaVida-O builds on
`google/siglip-so400m-patch14-384`) and a projector aligned to the LLM's embedding space. The
micro tower starts from random weights, and the masked-diffusion loss alone gives it no direct
reason to encode an object's shape: a question about "the circle" can only pick the circle out
once the features say which cell holds one (docs/benchmarks.md, "The answer padding", last table).
This stage trains the SigLIP tower, the resampler and the projector, with one of three targets:

- `classes`: name, in each feature cell, the object that covers most of it (none when no object
  covers a quarter of the cell), through a linear head that is then thrown away (the shipped
  weights' recipe);
- `words`: make each cell's feature the sum of the LLM's own input embeddings of the object's
  colour and kind words (" red" + " circle"; zero where no object is), and its box readable by a
  linear head. The image tokens then arrive in the space of the words that name them, as
  LLaVA-style projector alignment intends. With these features frozen afterwards
  (`vision_lr_scale` 0) a fresh network learns to pick out the object a question names within a
  few hundred steps; with `classes` features it never did (docs/benchmarks.md, "The expression is
  not read; image tokens in the words' space");
- `places`: as `words`, plus, in object cells, a fixed code of the cell's place (the sum of a row
  vector and a column vector, seeded random, as long as a colour-and-kind target) in place of the
  box head. `words` features say what a cell holds but hardly where: a full run on them answers
  every grounding request with one constant box (docs/benchmarks.md, "Words without places").
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
NONE = len(CLASSES)
VISION_PREFIXES = tuple(f"model.{part}" for part in VISION)  # the vision side, as the parameter count names it
TARGETS = ("classes", "words", "places")
BATCH = 32
LR = 1e-3
MIN_COVER = 1 / 4  # share of a cell an object must cover to name it
PLACE_SEED = 7  # `places`: the seed of the row and column codes
BOX_WEIGHT = 10.0  # `words`: the box term's weight against the (normalised) embedding term


def cell_objects(scene: Scene, cells: int) -> list[int | None]:
    """Per feature cell (row-major), the index of the object covering most of it, or None."""
    size = scene.side / cells
    out: list[int | None] = []
    for row in range(cells):
        for col in range(cells):
            best, pick = 0.0, None
            for i, o in enumerate(scene.objects):
                w = min(o.box[2], (col + 1) * size) - max(o.box[0], col * size)
                h = min(o.box[3], (row + 1) * size) - max(o.box[1], row * size)
                if w > 0 and h > 0 and w * h >= MIN_COVER * size * size and w * h > best:
                    best, pick = w * h, i
            out.append(pick)
    return out


def class_of(scene: Scene, index: int | None) -> int:
    """The class id of `scene.objects[index]`, NONE for no object."""
    return NONE if index is None else CLASSES.index((scene.objects[index].kind, scene.objects[index].color))


def cell_targets(scene: Scene, cells: int) -> Tensor:
    """[cells * cells] class ids: per feature cell, the class of the object covering most of it."""
    return torch.tensor([class_of(scene, i) for i in cell_objects(scene, cells)])


class ClassTarget:
    """`classes`: a linear head names each cell's object (or none)."""

    def __init__(self, net: LavidaNetwork):
        self.head = torch.nn.Linear(net.config.d_model, NONE + 1)

    def loss(self, feats: Tensor, scenes: list[Scene], cells: int) -> tuple[Tensor, float]:
        target = torch.cat([cell_targets(s, cells) for s in scenes])
        logits = self.head(feats)
        return F.cross_entropy(logits, target), float((logits.argmax(-1) == target).float().mean())


class WordTarget:
    """`words` and `places`: each cell's feature regressed onto E[colour] + E[kind] (zero for no
    object); with `places`, plus its place code in object cells, and otherwise the box (in [0, 1])
    read from the feature by a linear head. The embeddings are the network's at the start of this
    stage; accuracy is the share of cells whose feature, less its place code, lies nearest their
    own colour-and-kind target."""

    def __init__(self, net: LavidaNetwork, word_ids: dict[str, int], places: bool = False):
        table = net.model.transformer.wte.weight.detach()
        d = table.shape[1]
        self.words = torch.stack([table[word_ids[color]] + table[word_ids[kind]] for kind, color in CLASSES]
                                 + [torch.zeros(d)])
        self.scale = float(self.words[:NONE].pow(2).mean())
        self.places = places
        self.head = torch.nn.Linear(d, 4)
        self.unit = float(self.words[:NONE].norm(dim=-1).mean()) / d ** 0.5  # features -> unit RMS for the head

    def place_codes(self, cells: int) -> Tensor:
        """[cells * cells, d]: per cell (row-major), its row's code + its column's, scaled to the
        mean length of a colour-and-kind target; the same for every run (PLACE_SEED)."""
        d = self.words.shape[1]
        rows, cols = torch.randn(2, cells, d, generator=torch.Generator().manual_seed(PLACE_SEED))
        codes = (rows[:, None] + cols[None, :]).reshape(cells * cells, d)
        return codes * (self.unit * d ** 0.5 / codes.norm(dim=-1, keepdim=True))

    def goals(self, target: Tensor, cells: int) -> Tensor:
        """The feature each cell should have, for `target` class ids of whole images' cells."""
        goals = self.words[target]
        if self.places:
            placed = (target != NONE)[:, None]
            goals = goals + self.place_codes(cells).repeat(len(target) // cells ** 2, 1) * placed
        return goals

    def loss(self, feats: Tensor, scenes: list[Scene], cells: int) -> tuple[Tensor, float]:
        picks = [(s, i) for s in scenes for i in cell_objects(s, cells)]
        target = torch.tensor([class_of(s, i) for s, i in picks])
        goals = self.goals(target, cells)
        loss = F.mse_loss(feats, goals) / self.scale
        held = [k for k, (_, i) in enumerate(picks) if i is not None]
        if not self.places and held:
            boxes = torch.tensor([picks[k][0].objects[picks[k][1]].box for k in held], dtype=feats.dtype) / WORLD_SIDE
            loss = loss + BOX_WEIGHT * F.mse_loss(self.head(feats[held] / self.unit), boxes)
        unplaced = feats.detach() - (goals - self.words[target])
        return loss, float((torch.cdist(unplaced, self.words).argmin(-1) == target).float().mean())


def word_ids(tokenizer) -> dict[str, int]:
    """The token id of each colour and kind word as it follows a space (" red", " circle")."""
    out = {}
    for word in (*COLORS, *SHAPES):
        ids = tokenizer.encode(" " + word, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"the `words` and `places` vision targets need {word!r} to be one token, got {len(ids)}")
        out[word] = ids[0]
    return out


def pretrain_vision(net: LavidaNetwork, steps: int, seed: int,
                    log: Callable[[int, dict[str, float]], None] | None = None,
                    target: str = "classes", tokenizer=None) -> float:
    """Train the vision side for `steps` batches of 32 world images toward `target` (one of
    TARGETS; `words` needs the `tokenizer`); returns the mean cell accuracy of the last (up to)
    50 batches. Only the vision tower, resampler and projector change."""
    if target not in TARGETS:
        raise ValueError(f"unknown vision target {target!r} (one of {', '.join(TARGETS)})")
    if target != "classes" and tokenizer is None:
        raise ValueError(f"the `{target}` vision target needs the tokenizer (its colour and kind words)")
    rng = np.random.default_rng(seed)
    objective = (ClassTarget(net) if target == "classes" else
                 WordTarget(net, word_ids(tokenizer), places=target == "places"))
    params = [p for n, p in net.named_parameters() if n.startswith(VISION_PREFIXES)]
    opt = torch.optim.AdamW(params + list(objective.head.parameters()), lr=LR)
    pinpoints, tile = net.config.image_grid_pinpoints, net.config.vision.image_size
    accuracies: list[float] = []
    for step in range(1, steps + 1):
        scenes = [sample_scene(rng, WORLD_SIDE) for _ in range(BATCH)]
        pixels = torch.cat([anyres_tiles(s.image(), pinpoints, tile).pixels[:1] for s in scenes])  # overview tile
        feats = net.encode_tiles(pixels)
        cells = int(round(feats.shape[1] ** 0.5))
        loss, accuracy = objective.loss(feats.reshape(-1, feats.shape[-1]), scenes, cells)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        accuracies.append(accuracy)
        if log is not None:
            log(step, {"loss": float(loss.detach()), "cell_accuracy": accuracy})
    return float(np.mean(accuracies[-50:])) if accuracies else 0.0
