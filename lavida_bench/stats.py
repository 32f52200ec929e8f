"""Confidence intervals for aggregated metrics.

Percentile bootstrap over samples with a fixed seed, so the same scores always give the same
interval. Metrics that are not means of per-sample values (macro averages over groups) pass
their own statistic, and the bootstrap resamples within each group so group sizes are kept.
One exception: a 0/1 metric on which every sample agrees. Resampling identical values gives a
zero-width interval (a demo run printed MMMU "1.00 [1.00, 1.00]", n = 24), which claims a
certainty no sample count gives; there the interval is Clopper-Pearson's exact one. (Paired
differences of 0/1 scores that are all zero get the same treatment: reports/paired.py.)
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from lavida_bench.api import Metric

N_BOOTSTRAP = 1000
CI_LEVEL = 0.95


def mean_metric(values: Sequence[float], seed: int = 0, n_boot: int = N_BOOTSTRAP) -> Metric:
    """Mean of per-sample values with a 95% percentile-bootstrap interval."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return Metric(float("nan"), float("nan"), float("nan"), 0)
    if np.all(x == x[0]) and x[0] in (0.0, 1.0):
        return unanimous_metric(float(x[0]), int(x.size))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    boots = x[idx].mean(axis=1)
    lo, hi = np.quantile(boots, [(1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2])
    return Metric(float(x.mean()), float(lo), float(hi), int(x.size))


def no_event_bound(n: int, tail: float = (1 - CI_LEVEL) / 2) -> float:
    """Clopper-Pearson's upper bound on a rate of which `n` draws showed no event: the rate at
    which seeing none has probability `tail`."""
    return 1 - tail ** (1 / n)


def unanimous_metric(value: float, n: int) -> Metric:
    """`n` samples all 0 or all 1: the exact (Clopper-Pearson) interval."""
    bound = no_event_bound(n)
    return Metric(value, 1 - bound, 1.0, n) if value == 1.0 else Metric(value, 0.0, bound, n)


def macro_metric(groups: dict[str, Sequence[float]], seed: int = 0,
                 n_boot: int = N_BOOTSTRAP) -> Metric:
    """Unweighted mean of group means (e.g. GenEval's overall), bootstrapped within groups."""
    arrays = [np.asarray(v, dtype=np.float64) for v in groups.values() if len(v)]
    if not arrays:
        return Metric(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    value = float(np.mean([a.mean() for a in arrays]))
    boots = np.zeros(n_boot)
    for a in arrays:
        boots += a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1)
    boots /= len(arrays)
    lo, hi = np.quantile(boots, [(1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2])
    return Metric(value, float(lo), float(hi), int(sum(a.size for a in arrays)))


def statistic_metric(values: Sequence, statistic: Callable[[Sequence], float], seed: int = 0,
                     n_boot: int = 200) -> Metric:
    """Any statistic of a sample list (e.g. FID of a feature set) with a 95% bootstrap interval
    recentred on the estimate.

    Why recentred: a resample drawn with replacement repeats samples, and a statistic that
    measures spread (FID's covariance term) is biased by the repeats, so every resample's FID lies
    above the full set's and a plain percentile interval can exclude its own estimate (a demo run
    printed 495.2 [497.3, 515.6]). Subtracting the bootstrap's bias (mean of the resamples minus
    the estimate) keeps the resampling spread and removes that shift; for an unbiased statistic
    the bias is about zero and the interval is the percentile one.
    """
    items = list(values)
    if not items:
        return Metric(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    value = float(statistic(items))
    boots = np.asarray([statistic([items[i] for i in rng.integers(0, len(items), len(items))])
                        for _ in range(n_boot)])
    bias = float(boots.mean()) - value
    lo, hi = np.quantile(boots, [(1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2]) - bias
    return Metric(value, float(lo), float(hi), len(items))
