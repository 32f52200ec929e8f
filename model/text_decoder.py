"""Prefix-LM text decoding (LaVida-O `llava/model/language_model/llada/generate.py:217-390`): the prompt is encoded once into a cache and
the answer is decoded by masked diffusion against it."""
from __future__ import annotations

from torch import Tensor

from lavida_bench.model.parts import ModelParts
from lavida_bench.model.sampling.text import TextOptions, sample_text
from lavida_bench.model.sequences import Row


class TextDecoder:
    """Decodes answers for the rows of a batch; each row's noise comes from its own seed."""

    def __init__(self, parts: ModelParts):
        self.parts = parts

    def decode(self, rows: list[Row], gen_len: int, block: int, temperature: float,
               seeds: list[int]) -> tuple[Tensor, int, int]:
        """-> (answer tokens [B, gen_len], forward passes including the prompt's, steps run)."""
        p = self.parts
        batch = p.builder.batch(rows)
        _, cache = p.net(batch.embeds, valid=batch.attend, use_cache=True)

        def logits_fn(x: Tensor) -> Tensor:
            hidden, _ = p.net(p.net.embed_text(x), cache=cache)
            return p.net.text_logits(hidden).float()

        options = TextOptions(mask_id=p.ids.mask, block_length=block, temperature=temperature)
        tokens, trace = sample_text(logits_fn, p.generators(seeds), gen_len, options, device=p.device)
        return tokens, trace.nfe + 1, trace.steps
