"""Paired per-sample differences of a metric between two sets of score records.

A metric in metrics.json says how it is computed from per-sample scores (its task's
`MetricSpec`, stored as `from`: the score field, the samples it covers, an unweighted macro
over a field, a factor). `estimator_for` turns that into an `Estimator`; a metric without one
(FID, pooled categories) has no per-sample decomposition and is compared unpaired by the caller.

With an estimator, `paired_difference` resamples the shared sample ids (within groups for a
macro mean, keeping group sizes, as lavida_bench/stats.py does) and gives the difference with a
95% percentile-bootstrap interval. One exception, as for a unanimous metric in stats.py: when
two runs' 0/1 scores agree on every shared sample, resampling gives [0, 0], a certainty that no
sample count gives. The difference of two 0/1 rates is at most the rate at which they disagree,
so there the interval is +-(Clopper-Pearson's upper bound on that rate after no disagreement in
n); for a macro mean, the mean of the groups' bounds, each at a tail shared among the groups
(Bonferroni), so all hold together at 95%.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lavida_bench.stats import CI_LEVEL, no_event_bound
from lavida_bench.tasks.base import is_number  # the same test aggregate_declared applies

N_BOOTSTRAP = 2000


@dataclass(frozen=True)
class Estimator:
    """value = factor * mean(field) over the samples whose one `where` field equals its value
    (all samples when `where` is empty), or, with `macro`, factor * the unweighted mean over the
    values of that field of the per-group means."""

    field: str
    factor: float = 1.0
    where: tuple[tuple[str, str], ...] = ()
    macro: str | None = None

    def select(self, scores: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[float, str]]:
        """{sample id: (value, macro group)} of the samples this metric uses."""
        out = {}
        for sid, s in scores.items():
            v = s.get(self.field)
            if not is_number(v) or (self.where and not any(s.get(f) == g for f, g in self.where)):
                continue
            if self.macro and s.get(self.macro) is None:
                continue
            out[sid] = (float(v), str(s.get(self.macro)) if self.macro else "")
        return out

    def statistic(self, values: np.ndarray, groups: np.ndarray) -> float:
        if values.size == 0:
            return float("nan")
        if self.macro is None:
            return self.factor * float(values.mean())
        return self.factor * float(np.mean([values[groups == g].mean() for g in np.unique(groups)]))

    def describe(self) -> str:
        what = f"mean of '{self.field}'"
        if self.where:
            what += " where " + " or ".join(f"{f} = {g!r}" for f, g in self.where)
        if self.macro:
            what = f"unweighted mean over '{self.macro}' of the {what}"
        return what + (f" x {self.factor:g}" if self.factor != 1 else "")


def estimator_for(metric: Mapping[str, Any] | None) -> Estimator | None:
    """The per-sample decomposition a stored metric declares (None: not decomposable)."""
    source = (metric or {}).get("from")
    if not isinstance(source, Mapping) or not isinstance(source.get("field"), str):
        return None
    where = tuple((str(f), str(g)) for f, g in (source.get("where") or {}).items())
    return Estimator(source["field"], float(source.get("factor") or 1.0), where, source.get("macro"))


@dataclass(frozen=True)
class PairedDiff:
    """new - base on the shared samples, with a bootstrap interval."""

    base: float
    new: float
    delta: float
    ci_low: float
    ci_high: float
    n: int


def paired_difference(est: Estimator, base: Mapping[str, Mapping[str, Any]],
                      new: Mapping[str, Mapping[str, Any]], seed: int = 0,
                      n_boot: int = N_BOOTSTRAP) -> PairedDiff:
    """Paired bootstrap of `est` over the sample ids both score sets have. Groups (filter and
    macro group) are taken from the base run's record of each sample."""
    b_sel, n_sel = est.select(base), est.select(new)
    ids = sorted(set(b_sel) & set(n_sel))
    if not ids:
        nan = float("nan")
        return PairedDiff(nan, nan, nan, nan, nan, 0)
    b = np.array([b_sel[i][0] for i in ids])
    n = np.array([n_sel[i][0] for i in ids])
    groups = np.array([b_sel[i][1] for i in ids], dtype=object)
    d = n - b
    rng = np.random.default_rng(seed)
    labels = np.unique(groups)
    boots = np.zeros(n_boot)
    for g in labels:  # one resample per group keeps group sizes (a plain mean has one group)
        dg = d[groups == g]
        boots += dg[rng.integers(0, dg.size, size=(n_boot, dg.size))].mean(axis=1)
    boots *= est.factor / len(labels)
    lo, hi = np.quantile(boots, [(1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2])
    if not d.any() and np.isin(np.concatenate([b, n]), (0.0, 1.0)).all():
        tail = (1 - CI_LEVEL) / 2 / len(labels)
        bound = est.factor * float(np.mean([no_event_bound(int((groups == g).sum()), tail) for g in labels]))
        lo, hi = -bound, bound
    return PairedDiff(est.statistic(b, groups), est.statistic(n, groups),
                      est.statistic(d, groups), float(lo), float(hi), len(ids))


def unpaired_difference(base: Mapping[str, Any], new: Mapping[str, Any]) -> PairedDiff:
    """Difference of two stored metrics when no per-sample decomposition exists: the interval
    combines the two bootstrap half-widths in quadrature (a normal approximation)."""
    hw = lambda m: max(m["value"] - m["ci_low"], m["ci_high"] - m["value"])
    delta = new["value"] - base["value"]
    half = math.sqrt(hw(base) ** 2 + hw(new) ** 2)
    return PairedDiff(base["value"], new["value"], delta, delta - half, delta + half,
                      min(int(base["n"]), int(new["n"])))
