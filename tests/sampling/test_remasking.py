"""Margin and entropy remasking: their confidence values against hand computation, and the
reveal order they give, per the release's `generate()` (llava/model/language_model/llada/
generate.py: `entrophy` = sum p log(p + 1e-10) of softmax(fp64 logits), `margin` = top-1 minus
top-2 probability; the highest confidence is revealed first)."""
import math

import pytest
import torch

from lavida_bench.model.sampling.text import REMASKING, TextOptions, sample_text

from .fakes import Scripted, generators

MASK = 5  # vocabulary 0..4
P = [0.6, 0.3, 0.1, 0.0, 0.0]  # low confidence 0.6,  margin 0.3,   entropy -0.8979
Q = [0.52, 0.48, 0.0, 0.0, 0.0]  # low confidence 0.52, margin 0.04,  entropy -0.6923
R = [0.5, 0.125, 0.125, 0.125, 0.125]  # low confidence 0.5,  margin 0.375, entropy -1.3863


def log_probs(*rows: list[float]) -> torch.Tensor:
    """Logits whose softmax is exactly `rows` (zero probability -> -inf)."""
    return torch.tensor([[math.log(p) if p else -math.inf for p in row] for row in rows], dtype=torch.float64)


def confidence(kind: str, logits: torch.Tensor, x0: list[int]) -> list[float]:
    return REMASKING[kind](logits, torch.tensor(x0), None).tolist()


def test_margin_is_top1_minus_top2_probability_whatever_token_was_drawn():
    logits = log_probs(P, Q, R, [0.4, 0.4, 0.2, 0.0, 0.0])
    # x0 deliberately not the argmax: the margin does not look at the drawn token
    assert confidence("margin", logits, [2, 1, 4, 2]) == pytest.approx([0.3, 0.04, 0.375, 0.0], abs=1e-12)


def test_entropy_is_sum_p_log_p_with_the_release_epsilon():
    logits = log_probs(P, Q, R, [1.0, 0.0, 0.0, 0.0, 0.0])
    eps = 1e-10
    by_hand = [
        0.6 * math.log(0.6 + eps) + 0.3 * math.log(0.3 + eps) + 0.1 * math.log(0.1 + eps),  # -0.897946
        0.52 * math.log(0.52 + eps) + 0.48 * math.log(0.48 + eps),  # -0.692347
        0.5 * math.log(0.5 + eps) + 4 * 0.125 * math.log(0.125 + eps),  # -1.386294 = log(1/4)
        math.log(1.0 + eps),  # a certain token: 1e-10, finite (0 * log(0 + eps) = 0), the maximum
    ]
    assert by_hand[2] == pytest.approx(math.log(0.25))
    got = confidence("entropy", logits, [0, 0, 0, 0])
    assert got == pytest.approx(by_hand, rel=1e-12, abs=1e-15)
    assert got[3] == max(got)  # negative entropy: the most certain position is the most confident


@pytest.mark.parametrize("remasking, order", [
    ("low_confidence", [0, 1, 2]),  # P 0.6, Q 0.52, R 0.5
    ("margin", [2, 0, 1]),  # R 0.375, P 0.3, Q 0.04
    ("entropy", [1, 0, 2]),  # Q -0.692, P -0.898, R -1.386
])
def test_reveal_order_follows_the_confidence(remasking, order):
    fn = Scripted(log_probs(P, Q, R).float())
    out, _ = sample_text(fn, generators(0), 3, TextOptions(mask_id=MASK, block_length=3, remasking=remasking))
    masked_before_each_step = [{p for p in range(3) if call[0, p] == MASK} for call in fn.calls]
    assert masked_before_each_step == [{0, 1, 2}, set(order[1:]), {order[2]}]  # one token per step
    assert out.tolist() == [[0, 0, 0]]  # greedy: the argmax token of each position
