"""Transfer-count and temperature schedules against the release's tables and hand computation."""
import math

import pytest

from lavida_bench.model.sampling.schedules import temperature_schedule, transfer_counts

# printed in the release's Demo.ipynb cells 6 and 11 (LaVida-O)
SHIFT5_4096_64 = [
    13, 14, 13, 14, 15, 15, 15, 15, 16, 17, 17, 17, 18, 19, 19, 19, 21, 21, 21, 23, 23, 24, 25, 25,
    27, 28, 28, 30, 31, 32, 33, 35, 36, 38, 40, 41, 44, 45, 48, 49, 53, 55, 59, 61, 65, 69, 73, 77,
    83, 88, 94, 101, 109, 116, 126, 137, 148, 162, 177, 195, 216, 240, 267, 301,
]
# computed from the release's algorithm (LaVida-O generate.py:54-111) with shift 7
SHIFT7_4096_64 = [
    10, 9, 10, 10, 10, 11, 11, 11, 12, 12, 12, 13, 13, 14, 14, 15, 15, 15, 17, 16, 18, 18, 18, 20,
    20, 21, 22, 23, 24, 25, 26, 27, 29, 30, 32, 33, 35, 37, 39, 41, 44, 46, 49, 53, 56, 60, 64, 69,
    75, 80, 88, 95, 103, 114, 126, 138, 155, 173, 195, 222, 255, 294, 345, 409,
]


def test_release_shift5_table():
    assert sum(SHIFT5_4096_64) == 4096
    assert transfer_counts(4096, 64, "shift", 5.0) == SHIFT5_4096_64


def test_release_shift7_table():
    assert sum(SHIFT7_4096_64) == 4096
    assert transfer_counts(4096, 64, "shift", 7.0) == SHIFT7_4096_64


def test_shift_without_excess():
    # n=10, 4 steps, shift 5: sigma(t)=5t/(1+4t) at t=.25,.5,.75,1 -> .625,.8333,.9375,1
    # cum = trunc(10*sigma) = 0,6,8,9,10 -> d = 6,2,1,1 -> reversed
    assert transfer_counts(10, 4, "shift", 5.0) == [1, 1, 2, 6]


def test_shift_excess_walk_skips_ones():
    # n=8, 6 steps, shift 7: sigma at k/6 = .5833,.7778,.875,.9333,.9722,1
    # cum = 0,4,6,7,7,7,8 -> d = 4,2,1,0,0,1 -> clamp 4,2,1,1,1,1 (sum 10, excess 2)
    # walk: d0 4->3, d1 2->1 -> 3,1,1,1,1,1 -> reversed
    assert transfer_counts(8, 6, "shift", 7.0) == [1, 1, 1, 1, 1, 3]


def test_shift_excess_walk_wraps_around():
    # n=5, 5 steps, shift 7: cum = 0,3,4,4,4,5 -> d = 3,1,0,0,1 -> clamp 3,1,1,1,1 (excess 2)
    # walk: d0 3->2, skip the four 1s, wrap to d0 2->1
    assert transfer_counts(5, 5, "shift", 7.0) == [1, 1, 1, 1, 1]


def test_steps_capped_at_masked_count():
    # n=4 < 8 steps: S=4; shift 5 cum = 0,2,3,3,4 -> d = 2,1,0,1 -> clamp 2,1,1,1 -> walk d0 -> 1
    assert transfer_counts(4, 8, "shift", 5.0) == [1, 1, 1, 1]


def test_cosine_and_cosine2_hand_values():
    # cosine (1-cos(pi k/8))/2 * 32 truncated: 0,1,4,9,16,22,27,30,32 -> d 1,3,5,7,6,5,3,2
    assert transfer_counts(32, 8, "cosine") == [2, 3, 5, 6, 7, 5, 3, 1]
    # cosine2 sin(pi k/16) * 32 truncated: 0,6,12,17,22,26,29,31,32 -> d 6,6,5,5,4,3,2,1
    assert transfer_counts(32, 8, "cosine2") == [1, 2, 3, 4, 5, 5, 6, 6]


def test_linear_and_uniform():
    # linear: cum = trunc(10*k/3) = 0,3,6,10 -> d 3,3,4 -> reversed
    assert transfer_counts(10, 3, "linear") == [4, 3, 3]
    # uniform (LLaDA): base 3, the first 10%3=1 steps get one more
    assert transfer_counts(10, 3, "uniform") == [4, 3, 3]
    assert transfer_counts(32, 8, "uniform") == [4] * 8
    # uniform is not capped at n: trailing zeros, as the release's get_num_transfer_tokens
    assert transfer_counts(2, 4, "uniform") == [1, 1, 0, 0]


@pytest.mark.parametrize("schedule", ["shift", "cosine", "cosine2", "linear", "uniform"])
@pytest.mark.parametrize("n,steps", [(1, 1), (7, 3), (100, 64), (1024, 20), (4096, 64)])
def test_counts_sum_and_positivity(schedule, n, steps):
    counts = transfer_counts(n, steps, schedule, 3.0)
    assert sum(counts) == n
    if schedule != "uniform":
        assert len(counts) == min(n, steps) and min(counts) >= 1


def test_nothing_masked():
    assert transfer_counts(0, 4, "shift") == []
    assert transfer_counts(0, 2, "uniform") == [0, 0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown schedule"):
        transfer_counts(10, 2, "exp2")
    with pytest.raises(ValueError, match="steps"):
        transfer_counts(10, 0)


def test_temperature_schedules_hand_values():
    assert temperature_schedule("linear", 5, 0.2) == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2], abs=1e-6)
    # cos(pi*s/2)*(1-0.5)+0.5 at s = 0, .25, .5, .75, 1
    c = [math.cos(math.pi * s / 2) * 0.5 + 0.5 for s in (0, 0.25, 0.5, 0.75, 1)]
    assert c == pytest.approx([1.0, 0.96194, 0.85355, 0.69134, 0.5], abs=1e-5)
    assert temperature_schedule("cosine2", 5, 0.5) == pytest.approx(c, abs=1e-6)
    # shift 3 on 1-s = 1, .5, 0: 3x/(1+2x) = 1, .75, 0 (min 0)
    assert temperature_schedule("shift", 3, 0.0, shift=3.0) == pytest.approx([1.0, 0.75, 0.0], abs=1e-6)
    assert temperature_schedule("constant", 4, 0.3) == [1.0] * 4
    assert temperature_schedule("linear", 1, 0.5) == [1.0]
    with pytest.raises(ValueError, match="unknown kind"):
        temperature_schedule("cosine", 4, 0.5)
