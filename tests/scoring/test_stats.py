"""Bootstrap intervals: what a reader of a table assumes about `value [lo, hi]`."""
from __future__ import annotations

import numpy as np
import pytest

from lavida_bench.backends.fid import FrechetToReference
from lavida_bench.stats import mean_metric, statistic_metric


def fid_metric(n: int, seed: int):
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(2000, 6))
    distance = FrechetToReference(reference.mean(axis=0), np.cov(reference, rowvar=False))
    features = rng.normal(size=(n, 6))
    return statistic_metric(list(range(n)), lambda idx: distance(features[idx]), n_boot=200)


@pytest.mark.parametrize("n", [10, 20, 40])
def test_fid_interval_contains_its_own_estimate(n):
    """Resamples with repeats inflate FID; a plain percentile interval then lies wholly above the
    estimate (it did at n=10 and n=20 before the fix). The interval is recentred."""
    m = fid_metric(n, seed=n)
    assert m.ci_low <= m.value <= m.ci_high, (m.value, m.ci_low, m.ci_high)
    assert m.ci_high - m.ci_low > 0


def test_unbiased_statistic_keeps_the_percentile_interval():
    """For a mean the bootstrap bias is ~0: the recentred interval is the plain one."""
    values = np.random.default_rng(3).normal(size=200).tolist()
    plain = mean_metric(values, n_boot=200)
    general = statistic_metric(values, lambda v: float(np.mean(v)), n_boot=200)
    assert general.value == pytest.approx(plain.value)
    width = plain.ci_high - plain.ci_low
    assert general.ci_low == pytest.approx(plain.ci_low, abs=0.05 * width)
    assert general.ci_high == pytest.approx(plain.ci_high, abs=0.05 * width)


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_a_unanimous_rate_gets_the_exact_interval_not_a_zero_width_one(value):
    """24 of 24 right: resampling gives [1, 1]. The exact interval's low end is the rate p at
    which 24 of 24 has probability 2.5% (p ** 24 = 0.025, p = 0.858); all wrong mirrors it."""
    m = mean_metric([value] * 24)
    far = m.ci_low if value == 1.0 else 1 - m.ci_high
    assert m.value == value and m.n == 24
    assert far ** 24 == pytest.approx(0.025)
    assert (m.ci_high if value == 1.0 else m.ci_low) == value
    assert mean_metric([0.5] * 24).ci_low == 0.5  # not a 0/1 metric: the bootstrap, as before
