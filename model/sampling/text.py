"""Masked-diffusion text decoding (LLaDA), semi-autoregressive blocks with low-confidence remasking.

Reproduces the release's `generate()` (generate.py, lavida-o-model.md §6.1) apart from the
network: `logits_fn(x)` returns logits for the answer positions (the prompt's cache lives in the
caller's closure). Batching is real: every row draws its noise from its own generator, so a row's
output does not depend on batch size or position, and rows whose block is already decoded still
ride along in the shared forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from lavida_bench.model.sampling.schedules import transfer_counts

LogitsFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class SamplerTrace:
    """What a sampler did: `nfe` = logits_fn calls, `steps` = denoising steps run."""

    nfe: int = 0
    steps: int = 0


def check_generators(generators: list[torch.Generator], batch: int) -> None:
    """One generator per row is what makes outputs independent of batching."""
    if len(generators) != batch:
        raise ValueError(f"need one torch.Generator per row: batch={batch}, got {len(generators)} generators")


def row_rand(generator: torch.Generator, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """U[0,1) float64 noise drawn on the generator's own device, then moved to `device`."""
    return torch.rand(shape, generator=generator, dtype=torch.float64, device=generator.device).to(device)


def check_logits(logits: torch.Tensor, batch: int, length: int, who: str) -> None:
    """A logits_fn that returns the wrong shape is a caller bug; say which shape was expected."""
    if logits.dim() != 3 or logits.shape[0] != batch or logits.shape[1] != length:
        raise ValueError(f"{who}: logits_fn must return [B={batch}, L={length}, V], got {tuple(logits.shape)}")


def gumbel_argmax(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """argmax of exp(logits) / (-log u)^T in float64; T == 0 is plain argmax.

    Release `add_gumbel_noise` (generate.py, lavida-o-model.md §6.1). logits: [L, V] -> [L].
    """
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.to(torch.float64)
    noise = row_rand(generator, tuple(logits.shape), logits.device)
    return (logits.exp() / (-torch.log(noise)) ** temperature).argmax(-1)


def _low_confidence(logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    probs = torch.softmax(logits.to(torch.float64), dim=-1)
    return probs.gather(-1, x0.unsqueeze(-1)).squeeze(-1)


def _random(logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return row_rand(generator, tuple(x0.shape), x0.device)


def _margin(logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    top2 = torch.softmax(logits.to(torch.float64), dim=-1).topk(2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


def _entropy(logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    probs = torch.softmax(logits.to(torch.float64), dim=-1)
    return (probs * torch.log(probs + 1e-10)).sum(-1)  # release 'entrophy': eps 1e-10 (generate.py)


# Confidence of each candidate [L]; the highest-confidence masked positions are revealed (§6.1).
REMASKING: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]] = {
    "low_confidence": _low_confidence,
    "random": _random,
    "margin": _margin,
    "entropy": _entropy,
}


def steps_per_block_for(block_length: int, steps_per_block: int | None, step_ratio: float | None) -> int:
    """The release's step accounting (generate.py, §6.1): `steps` is ignored, each block gets
    block_length steps, capped by `step_per_block`, then scaled by `step_ratio` (int())."""
    if steps_per_block is not None and step_ratio is not None:
        raise ValueError("pass either steps_per_block or step_ratio, not both (as the release asserts)")
    steps = block_length if steps_per_block is None else min(steps_per_block, block_length)
    if step_ratio is not None:
        steps = int(steps * step_ratio)
    if steps < 1:
        raise ValueError(f"text sampler: steps per block must be >= 1, got {steps}")
    return steps


def _decode_row_step(
    x_row: torch.Tensor,
    block_logits: torch.Tensor,
    masked: torch.Tensor,
    k: int,
    temperature: float,
    confidence_fn: Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor],
    generator: torch.Generator,
) -> None:
    """Reveal the `k` most confident masked positions of one row's block, in place.

    x_row, masked: [Lb]; block_logits: [Lb, V]. Noise is drawn even when k == 0 (a uniform-schedule
    zero), so a row's random stream depends only on its own masks, never on the batch.
    """
    x0 = gumbel_argmax(block_logits, temperature, generator).to(x_row.device)
    confidence = confidence_fn(block_logits, x0.to(block_logits.device), generator).to(x_row.device)
    k = min(k, int(masked.sum()))
    if k == 0:
        return
    confidence = torch.where(masked, confidence.to(torch.float64), float("-inf"))
    chosen = confidence.topk(k).indices
    x_row[chosen] = x0[chosen]


def sample_text(
    logits_fn: LogitsFn,
    batch: int,
    gen_len: int,
    *,
    block_length: int,
    steps_per_block: int | None = None,
    temperature: float = 0.0,
    remasking: str = "low_confidence",
    mask_id: int,
    generators: list[torch.Generator],
    device: torch.device | str | None = None,
    step_ratio: float | None = None,
    schedule: str = "uniform",  # release default schedule=None (generate.py, §6.1)
    shift: float = 3.0,  # release `schedule_kwargs.get('shift', 3)` (generate.py)
    init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, SamplerTrace]:
    """Decode `gen_len` answer tokens per row by masked diffusion.

    logits_fn(x: LongTensor[B, gen_len]) -> FloatTensor[B, gen_len, V]. Blocks of `block_length`
    are decoded left to right; per step the release's counts (`schedule`, default its uniform
    split; "shift" uses `shift`) of the most confident masked tokens of the current block are
    revealed. A step on which no row has a masked token in the block is skipped without a
    forward pass, as the release does. `init` ([B, gen_len]) pre-fills tokens (draft tokens);
    non-mask entries are never changed. Returns (tokens [B, gen_len], trace).

    Gumbel noise is drawn only for the current block's positions (the release draws it for the
    whole answer, but outside the block the argmax is never used), which keeps a 127k-token
    vocabulary affordable on a CPU generator.
    """
    check_generators(generators, batch)
    if remasking not in REMASKING:
        raise ValueError(f"sample_text: unknown remasking {remasking!r}; expected one of {sorted(REMASKING)}")
    if block_length < 1 or gen_len % block_length:
        raise ValueError(f"sample_text: gen_len {gen_len} must be a multiple of block_length {block_length}")
    steps = steps_per_block_for(block_length, steps_per_block, step_ratio)
    if init is None:
        x = torch.full((batch, gen_len), mask_id, dtype=torch.long, device=device)
    else:
        if tuple(init.shape) != (batch, gen_len):
            raise ValueError(f"sample_text: init must be [{batch}, {gen_len}], got {tuple(init.shape)}")
        x = init.to(device=device, dtype=torch.long).clone()
    confidence_fn = REMASKING[remasking]
    trace = SamplerTrace()
    for start in range(0, gen_len, block_length):
        block = slice(start, start + block_length)
        n_masked = (x[:, block] == mask_id).sum(-1).tolist()
        counts = [transfer_counts(n, steps, schedule, shift) + [0] * steps for n in n_masked]
        for i in range(steps):
            masked = x[:, block] == mask_id
            if not masked.any():
                continue
            logits = logits_fn(x)
            check_logits(logits, batch, gen_len, "sample_text")
            trace.nfe += 1
            trace.steps += 1
            for row in range(batch):
                if not masked[row].any():
                    continue  # no draws either: a row's random stream must not depend on its batch
                _decode_row_step(
                    x[row, block], logits[row, block], masked[row], counts[row][i],
                    temperature, confidence_fn, generators[row],
                )
    return x, trace
