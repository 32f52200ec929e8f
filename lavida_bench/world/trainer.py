"""Masked-diffusion training of the micro Lavida-O on the world's task mix.

The objective is the release's (LaVida-O `llava/model/language_model/llava_llada.py:58-92,
258-330`): per sample a noise level t ~ U(0, 1) (the code's default `policy='uniform'`; the
published training scripts pass `--policy cosine`), each answer token masked with probability
(1 - 1e-3) t + 1e-3 and at least one masked; text answers are masked with the `<|mdm_mask|>`
token, image codes with code `codebook_size + 1`; the loss is the cross-entropy on the masked
positions. Every example is trained twice in its batch, once with its mask and once with the
complement of that mask, so each answer token and code is a target exactly once: complementary
masking, the default of the release's code (`do_inv` in `LlavaLladaForMaskedDiffusion.forward`).
The release's published training scripts switch it off (`export SKIP_COMPLEMENTARY_MASKING=1` in
`scripts/train/*.sh`). Here it stays on by choice: at this size the number of answer targets per
update is what limits learning (docs/benchmarks.md, the world probes). A second deliberate
difference: for the first `padding_from` steps a text answer's EOS padding is masked but not a
target (`run.padding_targets`); trained on it from the start, a network without a pretrained
LLM learns "EOS everywhere" and never the answer (docs/benchmarks.md, "The answer padding").
An option, off by default (`object_weight` 1 is the release's loss): in the image loss an
object's codes (every code but its image's most common one, the plain background) weigh
`object_weight` times a background code. The world's images are 75-95% one flat code, and
unweighted the network learns "background everywhere" and never an object's codes, even with
most of the object visible. Weighted 10x, short probes learn object codes, but a full run drew
object codes everywhere and no background (docs/benchmarks.md, "Text-to-image: the image path
never learned objects" and "A full run with object codes weighted 10x").

A second option, off by default (`object_masks` 0 keeps the release's masks): with that
probability an image example's mask also covers every code of its objects, so its first copy
must draw the objects from the prompt alone (and its complementary copy sees them whole). Under
uniform masks that state is rare and the background dominates the gradient: with every cell
visible but the object's, a plain transformer filled in the object a caption names with 0-1% of
its codes right through 4,000 steps, and with 70-84% by step 2,000 with these masks
(docs/benchmarks.md, "The initial weights and object masks").

For classifier-free guidance the whole prompt (every row before the image, except the image
rows) is replaced by the mask embedding with probability PROMPT_DROP = 0.1, and an edit's
source-VQ rows by the mask embedding, routed to the understanding branch, with probability
SOURCE_DROP = 0.5 - exactly how the pipeline forms its unconditional rows at inference.
Sequences are built with the harness's own `SequenceBuilder`, prompts and anyres tiles, so the
training rows are the inference rows with the answers filled in. Attention is bidirectional over
the whole row, prompt included: no prefix-LM mask, as in the release's published training
(`--prefix_lm` defaults to False, LaVida-O `llava/train/train.py:127`). So the micro model decodes
text the same way, the whole sequence at every step (`world/micro.py` `PREFIX_LM`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lavida_bench.model.network import LavidaNetwork
from lavida_bench.model.sequences import Row, SequenceBuilder
from lavida_bench.model.tokens import SpecialIds
from lavida_bench.model.vision import anyres_tiles
from lavida_bench.model.vq import VQTokenizer
from lavida_bench.world.micro import WORLD_SIDE
from lavida_bench.world.mix import ANSWER_TOKENS, Example

MIN_MASK = 1e-3  # llava_llada.py: p = (1 - eps) t + eps
PROMPT_DROP = 0.1  # config prompt_drop_rate
SOURCE_DROP = 0.5  # config image_enc_drop_rate
IMAGE_TASKS = ("t2i", "edit")


def mask_probability(t: Tensor) -> Tensor:
    return (1 - MIN_MASK) * t + MIN_MASK


def draw_mask(n: int, gen: torch.Generator) -> Tensor:
    """[n] bool: positions to mask at one random noise level, at least one of them."""
    t = torch.rand((), generator=gen)
    mask = torch.rand(n, generator=gen) < mask_probability(t)
    if not bool(mask.any()):
        mask[int(torch.randint(0, n, (1,), generator=gen))] = True
    return mask


@dataclass
class Encoded:
    """A text batch ready for the network: ids with masks applied, and what to predict where."""

    rows: list[Row]
    targets: list[Tensor]  # per row: target ids of its masked positions
    where: list[Tensor]  # per row: those positions


class WorldTrainer:
    """Turns examples into masked sequences and returns their loss (the network is trained)."""

    def __init__(self, network: LavidaNetwork, vq: VQTokenizer, tokenizer, ids: SpecialIds,
                 object_weight: float = 1.0, object_masks: float = 0.0):
        check_image_options(object_weight, object_masks)
        self.net, self.vq, self.tokenizer, self.ids = network, vq, tokenizer, ids
        self.object_weight, self.object_masks = object_weight, object_masks
        self.builder = SequenceBuilder(network, tokenizer, ids.bos, ids.eos)
        self.side = vq.side(WORLD_SIDE)
        self.n_pos = network.image_grid(self.side) ** 2
        cfg = network.config
        self.tile, self.pinpoints = cfg.vision.image_size, cfg.image_grid_pinpoints

    def loss(self, examples: list[Example], gen: torch.Generator, padding: bool = True) -> Tensor:
        """The batch's loss; `padding=False` leaves a text answer's EOS padding out of the targets
        (those positions are still masked in the input)."""
        tasks = {e.task for e in examples}
        if len(tasks) != 1:
            raise ValueError(f"a training batch holds one task, got {sorted(tasks)}")
        if tasks.pop() in IMAGE_TASKS:
            return self.image_loss(examples, gen)
        return self.text_loss(examples, gen, padding)

    def example_features(self, examples: list[Example]) -> list[list[Tensor]]:
        """Per example, the SigLIP features of each of its images (all tiles in one call)."""
        tiles = [anyres_tiles(im, self.pinpoints, self.tile) for e in examples for im in e.images]
        feats = iter(self.builder.image_features(tiles))
        return [[next(feats) for _ in e.images] for e in examples]

    # --- text answers ------------------------------------------------------------------------
    def answer_ids(self, example: Example) -> list[int]:
        """The answer, `<|eot_id|>`, then EOS up to the task's decode length (LLaDA's padding)."""
        ids = self.tokenizer(example.answer).input_ids + [self.ids.eot]
        length = ANSWER_TOKENS[example.task]
        if len(ids) > length:
            raise ValueError(f"{example.task} answer of {len(ids)} tokens exceeds {length}: {example.answer!r}")
        return ids + [self.ids.eos] * (length - len(ids))

    def encode_text(self, examples: list[Example], gen: torch.Generator, padding: bool = True) -> Encoded:
        """Each example twice, with complementary masks over its answer, so every answer token
        is predicted in one of the two rows; a copy with nothing to predict is left out. With
        `padding=False` the EOS padding is masked like the rest but is not a target."""
        rows, targets, where = [], [], []
        for example, feats in zip(examples, self.example_features(examples)):
            row, slots, answer = self.answer_row(example, feats)
            masked = draw_mask(len(answer), gen)
            scored = torch.ones_like(masked) if padding else ~self.padding_of(answer)
            for copy in (masked, ~masked):
                if bool((copy & scored).any()):
                    ids = list(row.ids)
                    for pos in slots[copy].tolist():
                        ids[pos] = self.ids.mask
                    rows.append(Row(ids, row.features))
                    targets.append(answer[copy & scored])
                    where.append(slots[copy & scored])
        return Encoded(rows, targets, where)

    def padding_of(self, answer: Tensor) -> Tensor:
        """[len] bool: the EOS padding after the answer's `<|eot_id|>` (none for LOC answers)."""
        ends = (answer == self.ids.eot).nonzero()
        if len(ends) == 0:
            return torch.zeros_like(answer, dtype=torch.bool)
        return torch.arange(len(answer)) > int(ends[0])

    def answer_row(self, example: Example, feats: list[Tensor]) -> tuple[Row, Tensor, Tensor]:
        """The row with its answer filled in, the answer's positions in it, and the answer ids."""
        row = self.builder.row(example.prompt, feats)
        if example.task == "ground":  # the prompt's four mask slots hold the LOC answer
            slots = torch.tensor(row.positions_of(self.ids.mask))
            answer = torch.tensor(self.tokenizer(example.answer).input_ids)
            if len(slots) != 4 or len(answer) != 4:
                raise ValueError(f"grounding example needs 4 slots and 4 LOC tokens: {example.answer!r}")
            ids = list(row.ids)
            for pos, tok in zip(slots.tolist(), answer.tolist()):
                ids[pos] = tok
            return Row(ids, row.features), slots, answer
        answer = torch.tensor(self.answer_ids(example))
        slots = torch.arange(len(row.ids), len(row.ids) + len(answer))
        return Row(row.ids + answer.tolist(), row.features), slots, answer

    def text_loss(self, examples: list[Example], gen: torch.Generator, padding: bool = True) -> Tensor:
        enc = self.encode_text(examples, gen, padding)
        batch = self.builder.batch(enc.rows)
        hidden, _ = self.net(batch.embeds, valid=batch.valid)
        row_idx = torch.cat([torch.full_like(w, i) for i, w in enumerate(enc.where)])
        logits = self.net.text_logits(hidden[row_idx, torch.cat(enc.where)])
        return F.cross_entropy(logits.float(), torch.cat(enc.targets))

    # --- image answers -----------------------------------------------------------------------
    def image_loss(self, examples: list[Example], gen: torch.Generator) -> Tensor:
        """Cross-entropy on the masked codes of each example's two complementary copies; the
        prompt and source drops are drawn once per example and apply to both copies."""
        with torch.no_grad():
            codes = self.vq.encode([e.target for e in examples], WORLD_SIDE)
        drawn = torch.stack([draw_mask(codes.shape[1], gen) for _ in examples])
        if self.object_masks:
            covered = torch.rand(len(examples), generator=gen) < self.object_masks
            drawn |= covered[:, None] & object_codes(codes)
        masks, codes = torch.cat([drawn, ~drawn]), torch.cat([codes, codes])  # complementary copies
        noisy = codes.masked_fill(masks, self.net.config.vq_mask_id)
        rows = [self.builder.row(e.prompt, f) for e, f in zip(examples, self.example_features(examples))]
        batch = self.builder.batch(rows + rows)
        gen_rows, src_rows = batch.mask_of(self.ids.gen_image), batch.mask_of(self.ids.source_image)
        embeds = batch.embeds.clone()
        d = embeds.shape[-1]
        embeds[gen_rows] = self.net.embed_codes(noisy, self.side).reshape(-1, d)
        route = gen_rows.clone()
        if bool(src_rows.any()):
            with torch.no_grad():
                source = self.vq.encode([e.source for e in examples if e.source is not None], WORLD_SIDE)
            embeds[src_rows] = self.net.embed_codes(torch.cat([source, source]), self.side).reshape(-1, d)
            kept = (torch.rand(len(examples), generator=gen) >= SOURCE_DROP).repeat(2)  # one draw per example
            route |= src_rows & kept[:, None]
            embeds[src_rows & ~kept[:, None]] = self._mask_embedding()
        dropped = (torch.rand(len(examples), generator=gen) < PROMPT_DROP).repeat(2)
        prompt = self.prompt_rows(batch.ids, batch.valid, gen_rows, examples + examples)
        embeds[prompt & dropped[:, None]] = self._mask_embedding()
        hidden, _ = self.net(embeds, gen_mask=route, valid=batch.valid, image_only=True)
        logits = self.net.code_logits(hidden[gen_rows].view(2 * len(examples), self.n_pos, d), self.side)
        weights = code_weights(codes, self.object_weight)[masks]
        losses = F.cross_entropy(logits[masks].float(), codes[masks], reduction="none")
        return (losses * weights).sum() / weights.sum()

    def _mask_embedding(self) -> Tensor:
        return self.net.embed_text(torch.tensor([self.ids.mask]))[0]

    def prompt_rows(self, ids: Tensor, valid: Tensor, gen: Tensor, examples: list[Example]) -> Tensor:
        """The rows the unconditional input masks: up to the end of the user turn (the second
        `<|eot_id|>`), or with a plan everything before the first image placeholder
        (LaVida-O `predict_t2i_edit.py:209-219`); never the image rows."""
        pos = torch.arange(ids.shape[1]).expand_as(ids)
        eot_count = ((ids == self.ids.eot) & valid).cumsum(1)
        second_eot = torch.where(eot_count == 2, pos, ids.shape[1]).min(1).values
        first_gen = torch.where(gen, pos, ids.shape[1]).min(1).values
        planned = torch.tensor([e.plan for e in examples])
        cutoff = torch.where(planned, torch.maximum(second_eot, first_gen - 1), second_eot)
        return (pos <= cutoff[:, None]) & valid & ~gen


def check_image_options(object_weight: float, object_masks: float) -> None:
    """The image-loss options' ranges (checked by `RunSettings` too, before the VQ stage runs)."""
    if object_weight < 1:
        raise ValueError(f"object_weight must be >= 1, got {object_weight}")
    if not 0 <= object_masks <= 1:
        raise ValueError(f"object_masks must be a probability in [0, 1], got {object_masks}")


def object_codes(codes: Tensor) -> Tensor:
    """`[N, n]` bool: the codes that differ from their image's most common code (the plain
    background of every world image), i.e. the codes of its objects."""
    return codes != torch.mode(codes, dim=1).values[:, None]


def code_weights(codes: Tensor, object_weight: float) -> Tensor:
    """`[N, n]` loss weights: `object_weight` for every object code, 1 for the background's."""
    return torch.where(object_codes(codes), object_weight, 1.0)


def sample_task(rng: np.random.Generator, mix: dict[str, float]) -> str:
    names = list(mix)
    weights = np.asarray([mix[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]
