"""Image-token sampler: reveal VQ codes over a fixed number of masked-diffusion steps.

Reproduces the release's `text_to_image` loop (predict_t2i_edit.py, lavida-o-model.md §6.2)
apart from the network and guidance: `logits_fn(codes)` already returns guided logits (see
guidance.py). Per step every masked code gets a candidate drawn at temperature T together with
its probability p0 under the untempered softmax; an unmasking policy then picks exactly the
step's count of positions (schedules.transfer_counts) to commit. Committed codes never change.

Every random draw of a row comes from that row's generator, so a row's codes do not depend on
batch size or position. Sampling uses inverse-CDF draws (one uniform per position) instead of
the release's `torch.distributions.Categorical`: the same distribution, with noise that tests
can reproduce by hand; bit-identical images to the release are impossible anyway because its
draws come from the global RNG.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from lavida_bench.model.sampling.pmj import stratified_order
from lavida_bench.model.sampling.schedules import temperature_schedule, transfer_counts
from lavida_bench.model.sampling.text import LogitsFn, SamplerTrace, check_generators, check_logits, row_rand

VQ_MASK_ID = 8193  # lavida-o-model.md §0 (predict_t2i_edit.py `img_mask_id`)
P0_FLOOR = 1e-20  # mmada: log(max(p0, 1e-20)) (§6.2)


def sample_codes(
    logits: torch.Tensor, masked: torch.Tensor, temperature: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates and their untempered probabilities for one row.

    logits [n, V], masked [n] -> (x0 [n] long, p0 [n] float64); entries at unmasked positions
    are 0. x0 ~ softmax(logits / T) by inverse CDF with one U[0,1) per position (all n are drawn,
    so the stream does not depend on how many are masked); T <= 0 means argmax. p0 is taken from
    softmax(logits) (§6.2: "probability under the un-tempered softmax").
    """
    n, vocab = logits.shape
    uniforms = row_rand(generator, (n,), logits.device)
    positions = masked.to(logits.device).nonzero().squeeze(-1)
    picked = logits[positions].to(torch.float64)  # [m, V]
    if temperature > 0:
        cdf = torch.softmax(picked / temperature, dim=-1).cumsum(-1)  # [m, V]
        targets = uniforms[positions].unsqueeze(-1) * cdf[:, -1:]
        tokens = torch.searchsorted(cdf, targets, right=True).squeeze(-1).clamp(max=vocab - 1)
    else:
        tokens = picked.argmax(-1)
    probs = torch.softmax(picked, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    x0 = torch.zeros(n, dtype=torch.long, device=logits.device).index_put((positions,), tokens)
    p0 = torch.zeros(n, dtype=torch.float64, device=logits.device).index_put((positions,), probs)
    return x0, p0


def gumbel(generator: torch.Generator, n: int, device: torch.device) -> torch.Tensor:
    """Standard Gumbel noise -log(-log u) (release `gumbel_noise`, predict_t2i_edit.py)."""
    return -torch.log(-torch.log(row_rand(generator, (n,), device)))


# A policy picks which masked positions to commit: (p0 [n], masked [n], k, strength a_i,
# generator, order) -> LongTensor[k] of positions. `strength` is alg_temp times the step's
# temperature factor; `order` is the stratified order (only that policy uses it).
Policy = Callable[[torch.Tensor, torch.Tensor, int, float, torch.Generator, torch.Tensor | None], torch.Tensor]


def _stratified(
    p0: torch.Tensor, masked: torch.Tensor, k: int, strength: float,
    generator: torch.Generator, order: torch.Tensor | None,
) -> torch.Tensor:
    # release: order[start:start+k] with start = n - #masked (§6.2); taking the first k still-masked
    # cells of the order is the same when sampling from scratch and never re-picks a given code.
    if order is None:
        raise ValueError("stratified policy needs the unmasking order")
    still_masked = order[masked[order]]
    return still_masked[:k]


def _mmada(
    p0: torch.Tensor, masked: torch.Tensor, k: int, strength: float,
    generator: torch.Generator, order: torch.Tensor | None,
) -> torch.Tensor:
    # release `mmada`: log(max(p0, 1e-20)) + a_i * Gumbel, masked to -inf, top-k (§6.2)
    noise = gumbel(generator, p0.shape[0], p0.device)
    confidence = torch.log(p0.clamp(min=P0_FLOOR)) + strength * noise
    confidence = torch.where(masked, confidence, float("-inf"))
    return confidence.topk(k).indices


def _mask_git(
    p0: torch.Tensor, masked: torch.Tensor, k: int, strength: float,
    generator: torch.Generator, order: torch.Tensor | None,
) -> torch.Tensor:
    # release `mask_git`: softmax(p0 / a_i over masked) sampled k times without replacement (§6.2)
    weights = torch.softmax(torch.where(masked, p0 / strength, float("-inf")), dim=-1)
    picked = torch.multinomial(weights.to(generator.device), k, replacement=False, generator=generator)
    return picked.to(p0.device)


POLICIES: dict[str, Policy] = {"stratified": _stratified, "mmada": _mmada, "mask_git": _mask_git}


def grid_side(n_tokens: int) -> int:
    """Side of the square code grid; the stratified order needs a power-of-two square (§6.2.1)."""
    side = math.isqrt(n_tokens)
    if side * side != n_tokens or side & (side - 1):
        raise ValueError(
            f"stratified policy needs n_tokens = side*side with side a power of two "
            f"(e.g. 4096 = 64x64 for 1024 px), got n_tokens={n_tokens}"
        )
    return side


def sample_image(
    logits_fn: LogitsFn,
    batch: int,
    n_tokens: int,
    *,
    steps: int = 64,
    schedule: str = "shift",
    shift: float = 5.0,
    policy: str = "stratified",
    temperature: float = 0.8,
    alg_temp: float = 5.0,
    dynamic_temperature: bool = True,
    min_temperature: float = 0.5,
    schedule_temp: str = "cosine2",
    mask_id: int = VQ_MASK_ID,
    generators: list[torch.Generator],
    order_seed: int = 42,
    device: torch.device | str | None = None,
    temperature_shift: float | None = None,
    init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, SamplerTrace]:
    """Generate `n_tokens` VQ codes per row; defaults are the demo's 1024_eval.yaml (§6.2.2).

    logits_fn(codes LongTensor[B, n]) -> FloatTensor[B, n, V], already guided. Each step calls it
    once (nfe == steps == len(transfer_counts(...))). The confidence strength of mmada/mask_git
    is alg_temp, times temperature_schedule(schedule_temp, steps, min_temperature,
    temperature_shift or shift) when `dynamic_temperature` (§6.2); stratified ignores it.
    `init` ([B, n]) pre-fills codes (non-mask entries are kept); rows may then need different
    counts, and a row whose schedule is shorter commits nothing on the extra steps.
    Returns (codes [B, n], trace).
    """
    check_generators(generators, batch)
    if policy not in POLICIES:
        raise ValueError(f"sample_image: unknown policy {policy!r}; expected one of {sorted(POLICIES)}")
    if init is None:
        codes = torch.full((batch, n_tokens), mask_id, dtype=torch.long, device=device)
    else:
        if tuple(init.shape) != (batch, n_tokens):
            raise ValueError(f"sample_image: init must be [{batch}, {n_tokens}], got {tuple(init.shape)}")
        codes = init.to(device=device, dtype=torch.long).clone()
    order = None
    if policy == "stratified":
        order = torch.tensor(stratified_order(grid_side(n_tokens), order_seed), device=codes.device)
    counts = [transfer_counts(int(n), steps, schedule, shift) for n in (codes == mask_id).sum(-1).tolist()]
    n_loop = max((len(c) for c in counts), default=0)
    factors = temperature_schedule(
        schedule_temp if dynamic_temperature else "constant", steps, min_temperature,
        shift if temperature_shift is None else temperature_shift,
    )
    select = POLICIES[policy]
    trace = SamplerTrace()
    for i in range(n_loop):
        masked = codes == mask_id
        logits = logits_fn(codes)
        check_logits(logits, batch, n_tokens, "sample_image")
        trace.nfe += 1
        trace.steps += 1
        for row in range(batch):
            k = counts[row][i] if i < len(counts[row]) else 0
            if k == 0:
                continue  # no draws: a row's random stream must not depend on its batch
            x0, p0 = sample_codes(logits[row], masked[row], temperature, generators[row])
            row_masked = masked[row].to(p0.device)
            row_order = None if order is None else order.to(p0.device)
            chosen = select(p0, row_masked, k, alg_temp * factors[i], generators[row], row_order)
            codes[row, chosen.to(codes.device)] = x0[chosen].to(codes.device)
    if (codes == mask_id).any():
        raise RuntimeError("sample_image: schedule left masked codes; transfer_counts must sum to #masked")
    return codes, trace
