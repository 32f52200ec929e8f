"""Image-token sampler: reveal VQ codes over a fixed number of masked-diffusion steps.

Reproduces the release's `text_to_image` loop (LaVida-O `llava/eval/predict_t2i_edit.py:421-611`)
apart from the network and guidance: `transition` takes guided logits (guidance.py), and only
where it reads them (a stratified step: the positions it commits). Per step every masked code gets a candidate drawn at temperature T together with
its probability p0 under the untempered softmax; an unmasking policy then picks exactly the
step's count of positions (schedules.transfer_counts) to commit. Committed codes never change.

Written in the diffusers scheduler style: `start` builds an `ImageState` (codes plus the whole
commit schedule, computed once on the host), `step_input` takes this step's random numbers from
each row's own generator, and `transition(options, codes, logits, inputs)` is a pure batched
step with no Python loop over rows and no host synchronisation, so a network forward plus the
transition (`denoiser`) compiles as one graph. `run_steps` is the loop; the image drawer runs it
with a compiled denoiser, `sample_image` with a plain one.

Every random draw of a row comes from that row's generator and only on steps where the row
commits something, so a row's codes do not depend on batch size or position. Sampling uses
inverse-CDF draws (one uniform per position) instead of the release's
`torch.distributions.Categorical`: the same distribution, with noise that tests can reproduce by
hand; bit-identical images to the release are impossible anyway because its draws come from the
global RNG. `mask_git` draws its Exp(1) noise exactly as `torch.multinomial` without replacement
does (p / q, top-k), so it equals the release's call on the same generator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from lavida_bench.model.sampling.pmj import stratified_order
from lavida_bench.model.sampling.schedules import temperature_schedule, transfer_counts
from lavida_bench.model.sampling.text import (
    LogitsFn,
    SamplerTrace,
    check_generators,
    check_logits,
    row_rand,
    take_top,
)

VQ_MASK_ID = 8193  # LaVida-O `llava/eval/predict_t2i_edit.py:192-193` (`img_mask_id`)
P0_FLOOR = 1e-20  # mmada: log(max(p0, 1e-20)) (predict_t2i_edit.py:421-611)
POLICIES = ("stratified", "mmada", "mask_git")


@dataclass(frozen=True)
class ImageOptions:
    """Image-sampler settings; the defaults are the demo's llava/eval/1024_eval.yaml.

    The confidence strength of mmada/mask_git is alg_temp, times
    temperature_schedule(schedule_temp, steps, min_temperature, temperature_shift or shift) when
    `dynamic_temperature` (predict_t2i_edit.py:377-402); stratified ignores it. T <= 0 means argmax candidates.
    """

    steps: int = 64
    schedule: str = "shift"
    shift: float = 5.0
    policy: str = "stratified"
    temperature: float = 0.8
    alg_temp: float = 5.0
    dynamic_temperature: bool = True
    min_temperature: float = 0.5
    schedule_temp: str = "cosine2"
    mask_id: int = VQ_MASK_ID
    order_seed: int = 42
    temperature_shift: float | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"sample_image: unknown policy {self.policy!r}; expected one of {sorted(POLICIES)}")

    def strengths(self) -> list[float]:
        kind = self.schedule_temp if self.dynamic_temperature else "constant"
        shift = self.shift if self.temperature_shift is None else self.temperature_shift
        return [self.alg_temp * f for f in temperature_schedule(kind, self.steps, self.min_temperature, shift)]


@dataclass(frozen=True)
class ImageState:
    """Codes mid-sampling plus the schedule every later step reads.

    `commits[r][i]` (host) / `commit_counts[:, i]` (device) is how many codes row r commits at
    step i. The stratified order fixes in advance WHICH positions each step commits, so for that
    policy `picks[i, r]` lists them (padded with n): candidates are then drawn at those positions
    only, not over all n x V logits (None for the confidence policies)."""

    codes: Tensor  # [B, n] long, mask_id where still masked
    commits: tuple[tuple[int, ...], ...]
    commit_counts: Tensor  # [B, n_steps] long
    strengths: Tensor  # [n_steps] float64
    picks: Tensor | None  # [n_steps, B, k_max] long
    step: int = 0

    @property
    def n_steps(self) -> int:
        return self.commit_counts.shape[1]


class StepInput(NamedTuple):
    """What one step needs besides codes and logits: its random draws (one uniform per position
    for the candidate, and the policy's noise: mmada Gumbel uniforms, mask_git Exp(1); zeros for
    rows that commit nothing) and its slice of the schedule."""

    uniforms: Tensor  # [B, n] float64
    policy_noise: Tensor | None  # [B, n] float64
    commits: Tensor  # [B] long: codes each row commits now
    strength: Tensor  # [] float64: the confidence strength a_i
    picks: Tensor | None  # [B, k_max] stratified: the positions committed now (n = padding)


Denoise = Callable[[Tensor, StepInput], Tensor]
Combine = Callable[[Tensor], Tensor]


def grid_side(n_tokens: int) -> int:
    """Side of the square code grid; the stratified order needs a power-of-two square (pmj.py:17-109)."""
    side = math.isqrt(n_tokens)
    if side * side != n_tokens or side & (side - 1):
        raise ValueError(
            f"stratified policy needs n_tokens = side*side with side a power of two "
            f"(e.g. 4096 = 64x64 for 1024 px), got n_tokens={n_tokens}"
        )
    return side


def start(options: ImageOptions, codes: Tensor) -> ImageState:
    """The state before step 0 for `codes [B, n]` (mask_id = to draw; other entries are kept).

    Rows may need different counts (pre-filled codes); a row whose schedule is shorter commits
    nothing on the extra steps. The only host read of tensor data happens here, once."""
    n = codes.shape[1]
    per_row = [transfer_counts(int(m), options.steps, options.schedule, options.shift)
               for m in (codes == options.mask_id).sum(-1).tolist()]
    n_steps = max((len(c) for c in per_row), default=0)
    commits = tuple(tuple(c) + (0,) * (n_steps - len(c)) for c in per_row)
    picks = None
    if options.policy == "stratified":
        picks = stratified_picks(stratified_order(grid_side(n), options.order_seed), codes, commits, options.mask_id)
    strengths = torch.tensor(options.strengths()[:n_steps] + [0.0] * max(0, n_steps - options.steps),
                             dtype=torch.float64, device=codes.device)
    counts = torch.tensor(commits, dtype=torch.long, device=codes.device).view(len(commits), n_steps)
    return ImageState(codes, commits, counts, strengths, picks)


def stratified_picks(order: list[int], codes: Tensor, commits: tuple[tuple[int, ...], ...], mask_id: int) -> Tensor:
    """`[n_steps, B, k_max]` positions each step commits: the release takes the next k cells of
    the order (order[start:start+k], start = n - #masked, §6.2); taking the first k still-masked
    cells is the same from scratch and never re-picks a pre-filled code. Padding is n."""
    b, n = codes.shape
    n_steps = len(commits[0]) if commits else 0
    masked = (codes == mask_id).tolist()
    steps = []
    for r in range(b):
        still, at, row = [p for p in order if masked[r][p]], 0, []
        for k in commits[r]:
            row.append(still[at:at + k])
            at += k
        steps.append(row)
    k_max = max((len(cells) for row in steps for cells in row), default=0)
    table = [[cells + [n] * (k_max - len(cells)) for cells in (row[i] for row in steps)] for i in range(n_steps)]
    return torch.tensor(table, dtype=torch.long, device=codes.device).view(n_steps, b, k_max)


def step_input(state: ImageState, options: ImageOptions, generators: list[torch.Generator]) -> StepInput:
    """This step's random numbers, each row from its own generator, only for rows that commit."""
    b, n = state.codes.shape
    device = state.codes.device
    uniforms = torch.zeros(b, n, dtype=torch.float64, device=device)
    policy = None if options.policy == "stratified" else torch.zeros_like(uniforms)
    for row, gen in enumerate(generators):
        if state.commits[row][state.step] == 0:
            continue  # no draws: a row's random stream must not depend on its batch
        uniforms[row] = row_rand(gen, (n,), device)
        if options.policy == "mmada":
            policy[row] = row_rand(gen, (n,), device)
        elif options.policy == "mask_git":  # torch.multinomial's own draw without replacement
            policy[row] = torch.empty(n, dtype=torch.float64, device=gen.device).exponential_(generator=gen).to(device)
    picks = None if state.picks is None else state.picks[state.step]
    return StepInput(uniforms, policy, state.commit_counts[:, state.step], state.strengths[state.step], picks)


def candidates(logits: Tensor, uniforms: Tensor, temperature: float, with_p0: bool = True) -> tuple[Tensor, Tensor | None]:
    """Candidates x0 ~ softmax(logits / T) by inverse CDF (one uniform per position; T <= 0 is
    argmax) and their probabilities p0 under the untempered softmax (predict_t2i_edit.py:421-611), in float64.
    logits [..., V], uniforms [...] -> (x0 [...] long, p0 [...] float64 or None)."""
    vocab = logits.shape[-1]
    wide = logits.to(torch.float64)
    if temperature > 0:
        cdf = torch.softmax(wide / temperature, dim=-1).cumsum(-1)
        targets = uniforms.unsqueeze(-1) * cdf[..., -1:]
        x0 = torch.searchsorted(cdf, targets, right=True).squeeze(-1).clamp(max=vocab - 1)
    else:
        x0 = wide.argmax(-1)
    if not with_p0:
        return x0, None
    return x0, torch.softmax(wide, dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)


def sample_codes(logits: Tensor, masked: Tensor, temperature: float,
                 generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """One row's candidates: logits [n, V], masked [n] -> (x0 [n] long, p0 [n] float64), zero at
    unmasked positions. All n uniforms are drawn, so the stream does not depend on the mask."""
    uniforms = row_rand(generator, (logits.shape[0],), logits.device)
    x0, p0 = candidates(logits, uniforms, temperature)
    masked = masked.to(logits.device)
    return torch.where(masked, x0, 0), torch.where(masked, p0, 0.0)


def priority(options: ImageOptions, masked: Tensor, p0: Tensor, inputs: StepInput) -> Tensor:
    """Per-position priority [B, n] of the confidence policies; a row's `k` highest masked
    positions are committed."""
    if options.policy == "mmada":  # log(max(p0, 1e-20)) + a_i * Gumbel (§6.2)
        gumbel = -torch.log(-torch.log(inputs.policy_noise))
        return torch.log(p0.clamp(min=P0_FLOOR)) + inputs.strength * gumbel
    # mask_git: softmax(p0 / a_i over masked) sampled without replacement, as multinomial does it
    weights = torch.softmax(torch.where(masked, p0 / inputs.strength, float("-inf")), dim=-1)
    return weights / inputs.policy_noise


def needed_positions(inputs: StepInput, n: int) -> Tensor | None:
    """[B, k_max] the only positions whose logits a stratified step reads (its picks, padding
    clamped to a real position); None for the confidence policies, which read all n."""
    return None if inputs.picks is None else inputs.picks.clamp(max=n - 1)


def commit_picked(options: ImageOptions, codes: Tensor, logits: Tensor, inputs: StepInput) -> Tensor:
    """Stratified: candidates drawn from the logits at this step's known positions
    ([B, k_max, V], `needed_positions`), written into the codes."""
    n = codes.shape[1]
    uniforms = inputs.uniforms.gather(1, needed_positions(inputs, n))
    x0, _ = candidates(logits, uniforms, options.temperature, with_p0=False)
    padded = torch.cat([codes, codes[:, :1]], dim=1)  # column n takes the padding's writes
    return padded.scatter(1, inputs.picks, x0.to(codes.device))[:, :n]


def transition(options: ImageOptions, codes: Tensor, logits: Tensor, inputs: StepInput) -> Tensor:
    """The codes after one step, tensors only (what `torch.compile` sees). `logits` are guided,
    at every position [B, n, V] or, for the stratified policy, at `needed_positions` only."""
    if inputs.picks is not None:
        return commit_picked(options, codes, logits, inputs)
    masked = codes == options.mask_id
    x0, p0 = candidates(logits, inputs.uniforms, options.temperature)
    order = torch.where(masked, priority(options, masked, p0, inputs), float("-inf"))
    return torch.where(take_top(order, inputs.commits), x0.to(codes.device), codes)


def only(branches: Tensor) -> Tensor:
    """The `combine` of logits that come already guided: one branch."""
    return branches[0]


def at_positions(logits: Tensor, at: Tensor | None) -> Tensor:
    """[..., B, n, V] -> [..., B, m, V]: the logits at positions `at` [B, m] (all when None)."""
    if at is None:
        return logits
    index = at.to(logits.device)[..., None].expand(*logits.shape[:-2], -1, logits.shape[-1])
    return logits.gather(-2, index)


@dataclass(frozen=True)
class Guided:
    """Code logits as guidance branches: `branches(codes, at)` -> [k, B, m, V], the logits of the
    k branches of one forward pass at positions `at` [B, m] (all n when None), and
    `combine([k, B, m, V])` -> [B, m, V], the guidance formula. The formula works entry by
    entry, so a stratified step combines only the positions it commits: the same numbers as
    combining everything and then picking, without the k x [B, n, V] arithmetic."""

    branches: Callable[[Tensor, Tensor | None], Tensor]
    combine: Combine = only

    def __call__(self, codes: Tensor) -> Tensor:
        return self.combine(self.branches(codes, None))


def denoiser(logits_fn: LogitsFn | Guided, options: ImageOptions, who: str) -> Denoise:
    """One denoising step, codes -> codes: guided logits where the step needs them, then
    `transition`; pure and batched with no host synchronisation, so it can run compiled.
    A plain `logits_fn` returns guided logits at every position."""
    guided = logits_fn if isinstance(logits_fn, Guided) else Guided(lambda c, at: at_positions(logits_fn(c), at)[None])

    def denoise(codes: Tensor, inputs: StepInput) -> Tensor:
        at = needed_positions(inputs, codes.shape[1])
        branches = guided.branches(codes, at)
        check_logits(branches[0], codes.shape[0], codes.shape[1] if at is None else at.shape[1], who)
        return transition(options, codes, guided.combine(branches), inputs)

    return denoise


def run_steps(state: ImageState, options: ImageOptions, generators: list[torch.Generator],
              denoise: Denoise) -> ImageState:
    """The denoising loop: each step's draws from every row's own generator, then `denoise`."""
    while state.step < state.n_steps:
        inputs = step_input(state, options, generators)
        state = replace(state, codes=denoise(state.codes, inputs), step=state.step + 1)
    finish(state, options)
    return state


def sample_image(logits_fn: LogitsFn, generators: list[torch.Generator], n_tokens: int,
                 options: ImageOptions = ImageOptions(), *, init: Tensor | None = None,
                 device: torch.device | str | None = None) -> tuple[Tensor, SamplerTrace]:
    """Generate `n_tokens` VQ codes per row (one generator per row): `run_steps` of a plain `denoiser`.

    logits_fn(codes LongTensor[B, n]) -> FloatTensor[B, n, V], already guided; each step calls it
    once (nfe == steps == len(transfer_counts(...))). `init` ([B, n]) pre-fills codes."""
    batch = len(generators)
    if init is None:
        codes = torch.full((batch, n_tokens), options.mask_id, dtype=torch.long, device=device)
    elif tuple(init.shape) != (batch, n_tokens):
        raise ValueError(f"sample_image: init must be [{batch}, {n_tokens}], got {tuple(init.shape)}")
    else:
        codes = init.to(device=device, dtype=torch.long).clone()
    check_generators(generators, batch)
    state = run_steps(start(options, codes), options, generators, denoiser(logits_fn, options, "sample_image"))
    return state.codes, SamplerTrace(nfe=state.n_steps, steps=state.n_steps)


def finish(state: ImageState, options: ImageOptions) -> None:
    """One host check after the loop: the schedule must have filled every code."""
    if bool((state.codes == options.mask_id).any()):
        raise RuntimeError("sample_image: schedule left masked codes; transfer_counts must sum to #masked")
