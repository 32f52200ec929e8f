"""Masked-diffusion text decoding (LaVida-O `llava/model/language_model/llada/generate.py:217-390`),
in either of the release's two layouts (its `prefix_lm` argument):

- prefix cache (`prefix_lm=True`, every official evaluation): the prompt is encoded once into a
  cache and each step runs only the answer against it, so the prompt never sees the answer;
- full sequence (`prefix_lm=False`, generate.py:259-271): each step runs prompt and answer
  together, the prompt attending to the answer as in training without the prefix-LM mask (the
  published training scripts never set `--prefix_lm`, LaVida-O `llava/train/train.py:127`).
  Weights trained that way from scratch need it: the world's micro model decodes its plans as
  `<LOC_288> I should place ...` against the cache and as its training targets without it
  (docs/benchmarks.md, "The prefix cache and the micro model").
"""
from __future__ import annotations

import torch
from torch import Tensor

from lavida_bench.model.parts import ModelParts
from lavida_bench.model.sampling.text import LogitsFn, TextOptions, sample_text
from lavida_bench.model.sequences import Batch, Row


def compile_pass(logits_fn: LogitsFn) -> LogitsFn:
    """torch.compile with fullgraph=True of one step's network pass (the sampler's transition stays
    eager: it reads the host-side schedule). Shapes are left to torch: the prompt's length varies
    from batch to batch, so a second length compiles a graph with that dimension dynamic instead
    of one graph per length."""
    return torch.compile(logits_fn, fullgraph=True)


class TextDecoder:
    """Decodes answers for the rows of a batch; each row's noise comes from its own seed."""

    def __init__(self, parts: ModelParts):
        self.parts = parts

    def decode(self, rows: list[Row], gen_len: int, block: int, temperature: float,
               seeds: list[int]) -> tuple[Tensor, int, int]:
        """-> (answer tokens [B, gen_len], forward passes including the prompt's, steps run)."""
        p = self.parts
        batch = p.builder.batch(rows)
        logits_fn, prompt_passes = (self._against_cache(batch), 1) if p.prefix_lm else (self._whole(batch, gen_len), 0)
        if p.compile_steps:
            logits_fn = compile_pass(logits_fn)
        options = TextOptions(mask_id=p.ids.mask, block_length=block, temperature=temperature)
        tokens, trace = sample_text(logits_fn, p.generators(seeds), gen_len, options, device=p.device)
        return tokens, trace.nfe + prompt_passes, trace.steps

    def _against_cache(self, batch: Batch) -> LogitsFn:
        net = self.parts.net
        _, cache = net(batch.embeds, valid=batch.attend, use_cache=True)

        def logits_fn(x: Tensor) -> Tensor:
            hidden, _ = net(net.embed_text(x), cache=cache)
            return net.text_logits(hidden).float()

        return logits_fn

    def _whole(self, batch: Batch, gen_len: int) -> LogitsFn:
        """Prompt and answer in one pass per step; a padded row's answer still takes the positions
        right after its own prompt (RoPE positions count valid rows only)."""
        net, length = self.parts.net, batch.ids.shape[1]
        answer_valid = torch.ones(len(batch.ids), gen_len, dtype=torch.bool, device=batch.valid.device)
        valid = torch.cat([batch.valid, answer_valid], dim=1) if batch.padded else None

        def logits_fn(x: Tensor) -> Tensor:
            hidden, _ = net(torch.cat([batch.embeds, net.embed_text(x)], dim=1), valid=valid)
            return net.text_logits(hidden[:, length:]).float()

        return logits_fn
