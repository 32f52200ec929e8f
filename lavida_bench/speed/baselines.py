"""Autoregressive decoding of Lavida-O's own answers: the "one token per pass" baseline.

Masked diffusion's speed claim is that several tokens come out of one forward pass (all four box
coordinates at once, LaVida-O `llava/eval/predict_grounding.py:57-101`). The fair comparison is the SAME network, the same
prompt and the same number of answer tokens, decoded one token per forward pass with a KV cache:
the prompt is encoded once, the first token is read at the prompt's last position, and every
later token is fed back alone against the growing cache (each new token sees only what came
before it, i.e. a causal cache). Greedy argmax, no early stop: the answer length is the one the
masked-diffusion path decodes, so both do the same amount of output.

The network was not trained to decode this way, so the answers are meaningless; only the cost is
compared. Implements the capability protocol (`understand`, `ground`).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lavida_bench.api import Request, Result, Stage, Trace
from lavida_bench.model import prompts
from lavida_bench.model.pipeline import LavidaPipeline
from lavida_bench.model.sampling.grounding import dequantize_box
from lavida_bench.model.sequences import Row
from lavida_bench.model.stages import StageClock
from lavida_bench.model.tokens import chat_prompt

BOX_TOKENS = 4  # x1, y1, x2, y2 (predict_grounding.py:145-195)


def grounding_prefix(expression: str) -> str:
    """The official RefCOCO prompt (predict_grounding.py:57-101) cut after `<LOC_BEGIN>`: what an AR decoder conditions on."""
    full = prompts.grounding_prompt(expression, n_masks=0)
    return full[: full.index("<LOC_BEGIN>") + len("<LOC_BEGIN>")]


class AutoregressiveLavida:
    name = "lavida_o_autoregressive"
    capabilities = frozenset({"understand", "ground"})

    def __init__(self, pipe: LavidaPipeline):
        self.pipe = pipe

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "speed baseline: Lavida-O's network decoded one token per pass "
                "with a KV cache", "model": self.pipe.describe()}

    @torch.no_grad()
    def decode(self, rows: list[Row], n_tokens: int) -> tuple[Tensor, int]:
        """Greedy AR decoding of `n_tokens` per row; returns (tokens [B, n], forward passes)."""
        net = self.pipe.net
        batch = self.pipe.builder.batch(rows)
        hidden, cache = net(batch.embeds, valid=batch.attend, use_cache=True)
        last = batch.valid.sum(1) - 1
        logits = net.text_logits(hidden[torch.arange(len(rows), device=hidden.device), last])
        token = logits.argmax(-1)
        tokens = [token]
        for _ in range(n_tokens - 1):
            hidden, cache = net(net.embed_text(token[:, None]), cache=cache, use_cache=True)
            token = net.text_logits(hidden[:, -1]).argmax(-1)
            tokens.append(token)
        return torch.stack(tokens, 1), n_tokens

    @torch.no_grad()
    def ground(self, requests: list[Request]) -> list[Result]:
        pipe = self.pipe
        with StageClock(pipe.device) as clock:
            feats = pipe.builder.image_features([pipe.parts.tiles(r.images[0]) for r in requests])
            rows = [pipe.builder.row(grounding_prefix(r.prompt), [f]) for r, f in zip(requests, feats)]
            tokens, nfe = self.decode(rows, BOX_TOKENS)
        results = []
        for r, toks in zip(requests, tokens.tolist()):
            bins = [pipe.ids.loc_value(t) for t in toks]
            w, h = r.images[0].size
            boxes = [dequantize_box(bins, w, h, pipe.parts.grounding_frame)] if None not in bins else []
            results.append(Result(boxes=boxes, trace=self._trace("ground_ar", nfe, clock.seconds / len(requests))))
        return results

    @torch.no_grad()
    def understand(self, requests: list[Request]) -> list[Result]:
        pipe = self.pipe
        n = requests[0].options.max_new_tokens or prompts.UNDERSTAND_DEFAULT_TOKENS
        with StageClock(pipe.device) as clock:
            rows = []
            for r in requests:
                feats = pipe.builder.image_features([pipe.parts.tiles(im) for im in r.images])
                rows.append(pipe.builder.row(chat_prompt(prompts.understand_user(r.prompt, len(r.images))), feats))
            tokens, nfe = self.decode(rows, n)
        texts = [pipe.tokenizer.decode(t, skip_special_tokens=True) for t in tokens.tolist()]
        return [Result(text=t, trace=self._trace("understand_ar", nfe, clock.seconds / len(requests))) for t in texts]

    @staticmethod
    def _trace(stage: str, nfe: int, seconds: float) -> Trace:
        return Trace(nfe=nfe, steps=nfe, latency_s=seconds, stages=[Stage(stage, nfe, seconds)])
