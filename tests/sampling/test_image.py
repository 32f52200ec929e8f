"""Image sampler: exact per-step counts, policies, temperature, guidance, determinism."""
import math

import pytest
import torch

from lavida_bench.model.sampling.guidance import cfg, guide_stacked
from lavida_bench.model.sampling.image import Guided, ImageOptions, at_positions, sample_codes, sample_image
from lavida_bench.model.sampling.pmj import stratified_order
from lavida_bench.model.sampling.schedules import transfer_counts

from .fakes import RowContent, Scripted, generators

MASK = 7
N = 16  # a 4x4 code grid


class Recorder:
    """Wraps a logits_fn and keeps every codes tensor it was called with."""

    def __init__(self, fn):
        self.fn = fn
        self.calls: list[torch.Tensor] = []

    def __call__(self, codes):
        self.calls.append(codes.clone())
        return self.fn(codes)


def logits_with_p0(targets: list[float], vocab: int = 4) -> torch.Tensor:
    """Position p: token 0 has probability targets[p] (the rest share 1 - q equally)."""
    rows = []
    for q in targets:
        rows.append([math.log(q * (vocab - 1) / (1 - q))] + [0.0] * (vocab - 1))
    return torch.tensor(rows)


def reveal_sequence(calls: list[torch.Tensor], final: torch.Tensor, row: int = 0) -> list[set[int]]:
    states = [c[row] for c in calls] + [final[row]]
    return [
        {p for p in range(states[0].numel()) if states[i][p] == MASK and states[i + 1][p] != MASK}
        for i in range(len(states) - 1)
    ]


@pytest.mark.parametrize("policy", ["stratified", "mmada", "mask_git"])
def test_each_masked_code_filled_once_with_exact_counts(policy):
    fn = Recorder(RowContent(length=N, vocab=4, n_ids=MASK + 1, seed=3))
    codes, trace = sample_image(fn, generators(4, 5), N, ImageOptions(steps=6, policy=policy, mask_id=MASK))
    counts = transfer_counts(N, 6, "shift", 5.0)
    assert trace.nfe == trace.steps == len(counts) == len(fn.calls)
    for row in range(2):
        states = [c[row] for c in fn.calls] + [codes[row]]
        for before, after in zip(states, states[1:]):
            kept = before != MASK
            assert torch.equal(after[kept], before[kept])  # committed codes never change
        assert [len(s) for s in reveal_sequence(fn.calls, codes, row)] == counts
    assert (codes != MASK).all() and (codes < 4).all()


def test_stratified_follows_pmj_order():
    fn = Recorder(Scripted(torch.randn(N, 4)))
    codes, _ = sample_image(fn, generators(0), N, ImageOptions(steps=5, temperature=0.0, mask_id=MASK))
    order = stratified_order(4, 42)
    start, expected = 0, []
    for k in transfer_counts(N, 5, "shift", 5.0):
        expected.append(set(order[start : start + k]))
        start += k
    assert reveal_sequence(fn.calls, codes) == expected


@pytest.mark.parametrize("policy,alg_temp", [("mmada", 0.0), ("mask_git", 1e-3)])
def test_confidence_policies_reveal_most_probable_first(policy, alg_temp):
    # p0 of the argmax token: 0.30, 0.34, ... 0.90 in a scrambled position order
    perm = [5, 0, 12, 3, 9, 15, 1, 7, 10, 2, 14, 6, 11, 4, 13, 8]
    targets = [0.30 + 0.04 * perm[p] for p in range(N)]
    fn = Recorder(Scripted(logits_with_p0(targets)))
    options = ImageOptions(steps=N, schedule="linear", policy=policy, temperature=0.0, alg_temp=alg_temp,
                           mask_id=MASK)
    codes, _ = sample_image(fn, generators(0), N, options)
    # linear over 16 steps reveals one code per step, highest p0 first
    order = sorted(range(N), key=lambda p: -targets[p])
    assert reveal_sequence(fn.calls, codes) == [{p} for p in order]
    assert codes.tolist() == [[0] * N]


def test_sampling_temperature_hand_thresholds():
    n = 64
    logits = torch.tensor([[0.0, math.log(3.0)]]).expand(n, 2)
    masked = torch.ones(n, dtype=torch.bool)
    u = torch.rand(n, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    # T=1: p(token 1) = 3/4 -> token 1 iff u >= 1/4; T=0.5: logits*2 -> p = 9/10 -> u >= 1/10
    # T=4: p(token 1) = 3^(1/4)/(1+3^(1/4)) -> token 1 iff u >= 1/(1+3^(1/4))
    for temperature, threshold in ((1.0, 0.25), (0.5, 0.1), (4.0, 1 / (1 + 3**0.25))):
        x0, p0 = sample_codes(logits, masked, temperature, torch.Generator().manual_seed(5))
        assert x0.tolist() == [int(v >= threshold) for v in u.tolist()]
        # p0 is the probability under the untempered softmax: 1/4 or 3/4 whatever T is
        assert p0.tolist() == pytest.approx([0.75 if t else 0.25 for t in x0.tolist()])
    assert ((u >= 0.1) & (u < 0.25)).any()  # the seed does separate T=1 from T=0.5
    x0, _ = sample_codes(logits, masked, 0.0, torch.Generator())
    assert x0.tolist() == [1] * n


def test_prefilled_codes_never_change():
    fn = Scripted(logits_with_p0([0.9] * N))  # argmax token is 0 everywhere
    init = torch.full((2, N), MASK)
    init[0, :4] = 3
    codes, trace = sample_image(fn, generators(1, 2), N, ImageOptions(steps=4, policy="stratified", mask_id=MASK),
                                init=init)
    assert codes[0, :4].tolist() == [3, 3, 3, 3]
    assert (codes != MASK).all()
    assert trace.nfe == 4  # longest row schedule: min(4, 16) steps


def test_batched_cfg_one_pass_per_step():
    cond = torch.tensor([[1.0, 2.0]]).expand(N, 2)
    uncond = torch.tensor([[0.0, 3.0]]).expand(N, 2)
    rows_seen = []

    def network(stacked):  # [2B, N] -> rows [uncond; cond]
        rows_seen.append(stacked.shape[0])
        half = stacked.shape[0] // 2
        return torch.cat([uncond.expand(half, -1, -1), cond.expand(half, -1, -1)])

    def guided(codes):
        return guide_stacked(network(torch.cat([codes, codes])), scale=1.0)

    codes, trace = sample_image(guided, generators(1, 2, 3), N, ImageOptions(steps=4, temperature=0.0, mask_id=MASK))
    # (1+1)*[1, 2] - [0, 3] = [2, 1]: guidance flips the argmax from token 1 to token 0
    assert codes.tolist() == [[0] * N] * 3
    assert rows_seen == [6] * 4 and trace.nfe == 4


@pytest.mark.parametrize("policy", ["stratified", "mmada", "mask_git"])
def test_guided_branches_give_the_codes_of_guided_logits(policy):
    """Guidance combined where the step reads the logits (a stratified step: only the positions it
    commits) gives exactly the codes of guiding every position first."""
    uncond, cond = (RowContent(length=N, vocab=6, n_ids=MASK + 1, seed=s) for s in (4, 5))
    widths = []

    def branches(codes, at):
        widths.append(N if at is None else at.shape[1])
        return at_positions(torch.stack([uncond(codes), cond(codes)]), at)

    options = ImageOptions(steps=5, policy=policy, temperature=1.0, mask_id=MASK)
    want, _ = sample_image(lambda codes: cfg(cond(codes), uncond(codes), 2.0), generators(1, 2), N, options)
    got, _ = sample_image(Guided(branches, lambda parts: cfg(parts[1], parts[0], 2.0)), generators(1, 2), N, options)
    assert torch.equal(got, want)
    commits = transfer_counts(N, 5, options.schedule, options.shift)
    # stratified: the picks table is padded to the largest step's count, well under the N positions
    assert widths == [max(commits) if policy == "stratified" else N] * len(commits) and max(commits) < N


@pytest.mark.parametrize("policy", ["stratified", "mmada", "mask_git"])
def test_row_output_independent_of_batch(policy):
    fn = RowContent(length=N, vocab=6, n_ids=MASK + 1, seed=2)
    options = ImageOptions(steps=5, policy=policy, temperature=1.0, mask_id=MASK)
    batched, _ = sample_image(fn, generators(1, 2, 3), N, options)
    alone, _ = sample_image(fn, generators(2), N, options)
    first, _ = sample_image(fn, generators(2, 8), N, options)
    assert torch.equal(batched[1], alone[0]) and torch.equal(first[0], alone[0])
    other, _ = sample_image(fn, generators(3), N, options)
    assert torch.equal(batched[2], other[0])


def test_shape_errors():
    fn = Scripted(torch.zeros(8, 4))
    for n in (8, 36):  # not square / square of a non-power of two
        with pytest.raises(ValueError, match="power of two"):
            sample_image(Scripted(torch.zeros(n, 4)), generators(0), n, ImageOptions(mask_id=MASK))
    codes, _ = sample_image(fn, generators(0), 8, ImageOptions(steps=3, policy="mmada", mask_id=MASK))
    assert (codes != MASK).all()
    with pytest.raises(ValueError, match="unknown policy"):
        sample_image(fn, generators(0), 8, ImageOptions(policy="halton", mask_id=MASK))
