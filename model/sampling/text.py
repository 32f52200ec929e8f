"""Masked-diffusion text decoding (LLaDA), semi-autoregressive blocks with low-confidence remasking.

Reproduces the release's `generate()` (LaVida-O `llava/model/language_model/llada/generate.py:217-390`) apart from the
network: `logits_fn(x)` returns logits for the answer positions (the prompt's cache lives in the
caller's closure). Batching is real: every row draws its noise from its own generator, so a row's
output does not depend on batch size or position, and rows whose block is already decoded still
ride along in the shared forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import Tensor

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


def take_top(priority: Tensor, k: Tensor) -> Tensor:
    """[B, n] bool: each row's `k[row]` highest entries, batched for per-row k with no host read
    (a stable descending sort, then the first k ranks)."""
    order = priority.argsort(dim=-1, descending=True, stable=True)
    places = torch.arange(priority.shape[-1], device=priority.device).expand_as(order)
    ranks = torch.empty_like(order).scatter_(-1, order, places)
    return ranks < k.to(priority.device)[:, None]


def noisy_argmax(logits: Tensor, uniforms: Tensor | None, temperature: float) -> Tensor:
    """argmax of exp(logits) / (-log u)^T in float64; T == 0 is plain argmax (no noise).

    Release `add_gumbel_noise` (LaVida-O `generate.py:20-31`). logits, uniforms: [..., V]."""
    if temperature == 0:
        return logits.argmax(-1)
    return (logits.to(torch.float64).exp() / (-torch.log(uniforms)) ** temperature).argmax(-1)


def gumbel_argmax(logits: Tensor, temperature: float, generator: torch.Generator) -> Tensor:
    """One row's `noisy_argmax` with its noise drawn from `generator`: logits [L, V] -> [L]."""
    if temperature == 0:
        return logits.argmax(-1)
    return noisy_argmax(logits, row_rand(generator, tuple(logits.shape), logits.device), temperature)


def _low_confidence(logits: Tensor, x0: Tensor, uniforms: Tensor | None) -> Tensor:
    probs = torch.softmax(logits.to(torch.float64), dim=-1)
    return probs.gather(-1, x0.unsqueeze(-1)).squeeze(-1)


def _random(logits: Tensor, x0: Tensor, uniforms: Tensor | None) -> Tensor:
    return uniforms


def _margin(logits: Tensor, x0: Tensor, uniforms: Tensor | None) -> Tensor:
    top2 = torch.softmax(logits.to(torch.float64), dim=-1).topk(2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


def _entropy(logits: Tensor, x0: Tensor, uniforms: Tensor | None) -> Tensor:
    probs = torch.softmax(logits.to(torch.float64), dim=-1)
    return (probs * torch.log(probs + 1e-10)).sum(-1)  # release 'entrophy': eps 1e-10 (generate.py)


# Confidence of each candidate [B, L] from (logits, candidates, the `random` policy's uniforms); the
# highest-confidence masked positions are revealed (generate.py:217-390).
REMASKING: dict[str, Callable[[Tensor, Tensor, Tensor | None], Tensor]] = {
    "low_confidence": _low_confidence,
    "random": _random,
    "margin": _margin,
    "entropy": _entropy,
}


def steps_per_block_for(block_length: int, steps_per_block: int | None, step_ratio: float | None) -> int:
    """The release's step accounting (generate.py:217-390): `steps` is ignored, each block gets
    block_length steps, capped by `step_per_block`, then scaled by `step_ratio` (int())."""
    if steps_per_block is not None and step_ratio is not None:
        raise ValueError("pass either steps_per_block or step_ratio, not both (as the release asserts)")
    steps = block_length if steps_per_block is None else min(steps_per_block, block_length)
    if step_ratio is not None:
        steps = int(steps * step_ratio)
    if steps < 1:
        raise ValueError(f"text sampler: steps per block must be >= 1, got {steps}")
    return steps


@dataclass(frozen=True, kw_only=True)
class TextOptions:
    """Text-decoder settings (generate.py:217-390). Blocks of `block_length` are decoded left to
    right; per step the release's counts (`schedule`: its default uniform split, or "shift" with
    `shift`) of the most confident masked tokens of the current block are revealed."""

    mask_id: int
    block_length: int
    steps_per_block: int | None = None
    step_ratio: float | None = None
    temperature: float = 0.0
    remasking: str = "low_confidence"
    schedule: str = "uniform"  # release default schedule=None (generate.py:217-390)
    shift: float = 3.0  # release `schedule_kwargs.get('shift', 3)` (generate.py)

    def __post_init__(self) -> None:
        if self.remasking not in REMASKING:
            raise ValueError(f"sample_text: unknown remasking {self.remasking!r}; expected one of {sorted(REMASKING)}")

    @property
    def steps(self) -> int:
        return steps_per_block_for(self.block_length, self.steps_per_block, self.step_ratio)


@dataclass(frozen=True)
class TextState:
    """Tokens mid-decoding and the schedule: step `i` works on block `i // options.steps`;
    `commits[r][i]` (host) / `commit_counts[:, i]` (device) is how many tokens row r reveals at
    step i and `left[r][i]` how many are still masked in its block just before (host arithmetic
    on the counts, so no step reads tensor data back)."""

    x: Tensor  # [B, gen_len]
    commits: tuple[tuple[int, ...], ...]
    left: tuple[tuple[int, ...], ...]
    commit_counts: Tensor  # [B, n_steps] long
    step: int = 0

    @property
    def n_steps(self) -> int:
        return self.commit_counts.shape[1]

    def runs(self) -> bool:
        """Whether this step needs a forward pass: some row has a masked token in its block."""
        return any(row[self.step] > 0 for row in self.left)


@dataclass(frozen=True)
class TextStepInput:
    """Noise of one step (zeros for rows with nothing left to reveal) and its commit counts."""

    gumbel: Tensor | None  # [B, block, V] float64 uniforms when temperature > 0
    uniforms: Tensor | None  # [B, block] float64 for `random` remasking
    commits: Tensor  # [B] long


def _row_schedule(n_masked: list[int], options: TextOptions) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(commits, left) per step of one row, from its masked count per block."""
    steps, commits, left = options.steps, [], []
    for n in n_masked:
        counts = (transfer_counts(n, steps, options.schedule, options.shift) + [0] * steps)[:steps]
        for c in counts:
            left.append(n)
            commits.append(c)
            n -= min(c, n)
    return tuple(commits), tuple(left)


def start_text(options: TextOptions, x: Tensor) -> TextState:
    """The state before step 0 of `x [B, gen_len]`; the one host read of token data is here."""
    b, gen_len = x.shape
    if options.block_length < 1 or gen_len % options.block_length:
        raise ValueError(f"sample_text: gen_len {gen_len} must be a multiple of block_length {options.block_length}")
    n_masked = (x.view(b, -1, options.block_length) == options.mask_id).sum(-1).tolist()
    rows = [_row_schedule(n, options) for n in n_masked]
    commits = tuple(c for c, _ in rows)
    counts = torch.tensor(commits, dtype=torch.long, device=x.device).view(b, -1)
    return TextState(x, commits, tuple(left for _, left in rows), counts)


def text_step_input(state: TextState, options: TextOptions, generators: list[torch.Generator],
                    vocab: int) -> TextStepInput:
    """This step's noise from each row's generator, only for rows with masked tokens left (so a
    row's random stream depends only on its own masks), in the release's order: Gumbel first."""
    b, bl, device = state.x.shape[0], options.block_length, state.x.device
    gumbel = torch.zeros(b, bl, vocab, dtype=torch.float64, device=device) if options.temperature else None
    uniforms = torch.zeros(b, bl, dtype=torch.float64, device=device) if options.remasking == "random" else None
    for row, gen in enumerate(generators):
        if state.left[row][state.step] == 0:
            continue
        if gumbel is not None:
            gumbel[row] = row_rand(gen, (bl, vocab), device)
        if uniforms is not None:
            uniforms[row] = row_rand(gen, (bl,), device)
    return TextStepInput(gumbel, uniforms, state.commit_counts[:, state.step])


def text_step(state: TextState, logits: Tensor, inputs: TextStepInput, options: TextOptions) -> TextState:
    """Reveal this step's most confident masked tokens of the current block: pure and batched.
    logits [B, gen_len, V]; only the block's positions are read."""
    first = state.step // options.steps * options.block_length
    block = slice(first, first + options.block_length)
    xb, lb = state.x[:, block], logits[:, block]
    masked = xb == options.mask_id
    x0 = noisy_argmax(lb, inputs.gumbel, options.temperature).to(xb.device)
    confidence = REMASKING[options.remasking](lb, x0.to(lb.device), inputs.uniforms).to(xb.device)
    priority = torch.where(masked, confidence.to(torch.float64), float("-inf"))
    chosen = take_top(priority, torch.minimum(inputs.commits, masked.sum(-1)))
    x = state.x.clone()
    x[:, block] = torch.where(chosen, x0, xb)
    return replace(state, x=x, step=state.step + 1)


def sample_text(logits_fn: LogitsFn, generators: list[torch.Generator], gen_len: int, options: TextOptions,
                *, init: Tensor | None = None, device: torch.device | str | None = None) -> tuple[Tensor, SamplerTrace]:
    """Decode `gen_len` answer tokens per row (one generator per row) by masked diffusion.

    logits_fn(x: LongTensor[B, gen_len]) -> FloatTensor[B, gen_len, V]. A step on which no row has
    a masked token in the block is skipped without a forward pass, as the release does. `init`
    ([B, gen_len]) pre-fills tokens (draft tokens); non-mask entries are never changed.

    Gumbel noise is drawn only for the current block's positions (the release draws it for the
    whole answer, but outside the block the argmax is never used), which keeps a 127k-token
    vocabulary affordable on a CPU generator.
    """
    if init is None:
        x = torch.full((len(generators), gen_len), options.mask_id, dtype=torch.long, device=device)
    elif init.dim() != 2 or init.shape[1] != gen_len:
        raise ValueError(f"sample_text: init must be [B, {gen_len}], got {tuple(init.shape)}")
    else:
        x = init.to(device=device, dtype=torch.long).clone()
    check_generators(generators, x.shape[0])
    state, trace = start_text(options, x), SamplerTrace()
    while state.step < state.n_steps:
        if not state.runs():
            state = replace(state, step=state.step + 1)
            continue
        logits = logits_fn(state.x)
        check_logits(logits, x.shape[0], gen_len, "sample_text")
        inputs = text_step_input(state, options, generators, logits.shape[-1])
        state = text_step(state, logits, inputs, options)
        trace.nfe += 1
        trace.steps += 1
    return state.x, trace
