"""Confidence intervals for aggregated metrics.

Percentile bootstrap over samples with a fixed seed, so the same scores always give the same
interval. Metrics that are not means of per-sample values (macro averages over groups) pass
their own statistic, and the bootstrap resamples within each group so group sizes are kept.
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
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    boots = x[idx].mean(axis=1)
    lo, hi = np.quantile(boots, [(1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2])
    return Metric(float(x.mean()), float(lo), float(hi), int(x.size))


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
