"""Text sampler: confidence ordering, blocks, step accounting, Gumbel noise, determinism."""
import math

import pytest
import torch

from lavida_bench.model.sampling.text import TextOptions, gumbel_argmax, sample_text

from .fakes import RowContent, Scripted, generators

MASK = 5  # vocabulary 0..4; the mask id is outside it, as 126336 is for real logits
V = 5


def one_hot_logits(tokens: list[int], heights: list[float]) -> list[list[float]]:
    """Position p: logit heights[p] at tokens[p], 0 elsewhere -> confidence grows with height."""
    return [[h if v == t else 0.0 for v in range(V)] for t, h in zip(tokens, heights)]


def masked_positions(x: torch.Tensor) -> list[int]:
    return [i for i, v in enumerate(x[0].tolist()) if v == MASK]


def test_low_confidence_reveals_most_confident_first():
    fn = Scripted(one_hot_logits([1, 2, 3, 4], [1.0, 4.0, 2.0, 3.0]))
    out, trace = sample_text(fn, generators(0), 4, TextOptions(block_length=4, steps_per_block=2, mask_id=MASK))
    # uniform split 4 over 2 steps = [2, 2]; step 1 commits the two tallest logits: positions 1, 3
    assert fn.calls[1].tolist() == [[MASK, 2, MASK, 4]]
    assert out.tolist() == [[1, 2, 3, 4]]
    assert (trace.nfe, trace.steps) == (2, 2)


def test_blocks_are_semi_autoregressive():
    fn = Scripted(one_hot_logits([0, 1, 2, 3], [1.0, 2.0, 8.0, 9.0]))
    out, trace = sample_text(fn, generators(0), 4, TextOptions(block_length=2, mask_id=MASK))
    # default steps per block = block_length = 2 (one token per step); block 1 waits for block 0
    assert [masked_positions(x) for x in fn.calls] == [[0, 1, 2, 3], [0, 2, 3], [2, 3], [2]]
    assert out.tolist() == [[0, 1, 2, 3]]
    assert trace.nfe == 4


def test_decoded_block_costs_no_forward_pass_and_prefill_is_kept():
    fn = Scripted(one_hot_logits([0, 1, 2, 3], [1.0, 2.0, 8.0, 9.0]))
    init = torch.tensor([[MASK, MASK, 4, 4]])
    out, trace = sample_text(fn, generators(0), 4, TextOptions(block_length=2, mask_id=MASK), init=init)
    assert out.tolist() == [[0, 1, 4, 4]]
    assert trace.nfe == 2


def test_step_ratio_and_steps_per_block_cap():
    fn = Scripted(one_hot_logits([0, 1, 2, 3] * 2, [float(i) for i in range(8)]))
    _, trace = sample_text(fn, generators(0), 8, TextOptions(block_length=4, step_ratio=0.5, mask_id=MASK))
    assert trace.nfe == 4  # int(4 * 0.5) = 2 steps per block, 2 blocks
    assert [len(masked_positions(x)) for x in fn.calls] == [8, 6, 4, 2]
    _, trace = sample_text(fn, generators(0), 8, TextOptions(block_length=4, steps_per_block=9, mask_id=MASK))
    assert trace.nfe == 8  # min(9, block_length) = 4 steps per block


def test_shift_schedule_counts():
    fn = Scripted(one_hot_logits([0] * 10, [float(i) for i in range(10)]))
    options = TextOptions(block_length=10, steps_per_block=4, schedule="shift", shift=5.0, mask_id=MASK)
    _, trace = sample_text(fn, generators(0), 10, options)
    # transfer_counts(10, 4, shift 5) = [1, 1, 2, 6] (hand-computed in test_schedules)
    assert [len(masked_positions(x)) for x in fn.calls] == [10, 9, 8, 6]
    assert trace.nfe == 4


def test_gumbel_argmax_matches_log_form():
    torch.manual_seed(0)
    logits = torch.randn(64, 8) * 0.1
    temperature = 0.7
    got = gumbel_argmax(logits, temperature, torch.Generator().manual_seed(3))
    u = torch.rand((64, 8), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    # exp(l)/(-log u)^T is maximised where l - T*log(-log u) is
    expected = (logits.double() - temperature * torch.log(-torch.log(u))).argmax(-1)
    assert torch.equal(got, expected)
    assert not torch.equal(got, logits.argmax(-1))  # the noise does move near-flat positions
    assert torch.equal(gumbel_argmax(logits, 0.0, torch.Generator()), logits.argmax(-1))


def test_gumbel_two_token_hand_case():
    # logits [0, ln 2]: token 1 wins iff 2/(-log u1)^T > 1/(-log u0)^T
    logits = torch.tensor([[0.0, math.log(2.0)]])
    u = torch.rand((1, 2), generator=torch.Generator().manual_seed(11), dtype=torch.float64)[0].tolist()
    for temperature in (0.5, 1.0, 3.0):
        lhs = 2.0 / (-math.log(u[1])) ** temperature
        rhs = 1.0 / (-math.log(u[0])) ** temperature
        got = gumbel_argmax(logits, temperature, torch.Generator().manual_seed(11)).item()
        assert got == (1 if lhs > rhs else 0)


def test_random_remasking_uses_row_generator():
    fn = Scripted(one_hot_logits([1, 2, 3, 4], [1.0, 4.0, 2.0, 3.0]))
    out, _ = sample_text(fn, generators(7), 4, TextOptions(block_length=4, remasking="random", mask_id=MASK))
    first = torch.rand(4, generator=torch.Generator().manual_seed(7), dtype=torch.float64).argmax().item()
    assert masked_positions(fn.calls[1]) == [p for p in range(4) if p != first]
    assert out.tolist() == [[1, 2, 3, 4]]


@pytest.mark.parametrize("remasking", ["low_confidence", "random", "margin", "entropy"])
def test_row_output_independent_of_batch(remasking):
    fn = RowContent(length=8, vocab=V, n_ids=MASK + 1, seed=1)
    kwargs = dict(block_length=4, temperature=1.0, remasking=remasking, mask_id=MASK)
    batched, _ = sample_text(fn, generators(1, 2, 3), 8, TextOptions(**kwargs))
    alone, _ = sample_text(fn, generators(2), 8, TextOptions(**kwargs))
    first, _ = sample_text(fn, generators(2, 9), 8, TextOptions(**kwargs))
    assert torch.equal(batched[1], alone[0]) and torch.equal(first[0], alone[0])
    assert (batched != MASK).all()


def test_bad_inputs():
    fn = Scripted(one_hot_logits([0] * 4, [1.0] * 4))
    with pytest.raises(ValueError, match="multiple of block_length"):
        sample_text(fn, generators(0), 4, TextOptions(block_length=3, mask_id=MASK))
    with pytest.raises(ValueError, match="one torch.Generator per row"):
        sample_text(fn, generators(0), 4, TextOptions(block_length=4, mask_id=MASK), init=torch.full((2, 4), MASK))
    with pytest.raises(ValueError, match="unknown remasking"):
        sample_text(fn, generators(0), 4, TextOptions(block_length=4, remasking="entrophy", mask_id=MASK))
    with pytest.raises(ValueError, match=r"\[B=1, L=6, V\]"):
        sample_text(fn, generators(0), 6, TextOptions(block_length=6, mask_id=MASK))
