"""Paired per-sample differences of a metric between two sets of score records.

A metric in metrics.json is an aggregate of per-sample scores, but reports do not know each
task's aggregation code. `find_estimator` recovers it: it tries the few shapes benchmark metrics
have (mean of a score field, over all samples or over one group such as a split; an unweighted
mean of group means such as GenEval's overall; either times 100) and keeps the first one that
reproduces the stored value *and* sample count on the run's own scores. A metric no shape
reproduces (FID, a statistic of the whole feature set) has no per-sample decomposition and is
compared unpaired by the caller.

With an estimator, `paired_difference` resamples the shared sample ids (within groups for a
macro mean, keeping group sizes, as lavida_bench/stats.py does) and gives the difference with a
95% percentile-bootstrap interval.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

N_BOOTSTRAP = 2000
CI_LEVEL = 0.95
SCALES = (1.0, 100.0)
MATCH_TOL = 1e-6
MAX_GROUP_LEN = 200


@dataclass(frozen=True)
class Estimator:
    """How a metric is computed from per-sample scores.

    value = scale * mean(field) over samples with `group_field == group_value` (or all), or, with
    `macro_field`, scale * unweighted mean over groups of the per-group means."""

    field: str
    scale: float = 1.0
    group_field: str | None = None
    group_value: str | None = None
    macro_field: str | None = None

    def select(self, scores: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[float, str]]:
        """{sample id: (value, macro group)} of the samples this metric uses."""
        out = {}
        for sid, s in scores.items():
            v = s.get(self.field)
            if not is_number(v):
                continue
            if self.group_field is not None and s.get(self.group_field) != self.group_value:
                continue
            group = str(s.get(self.macro_field)) if self.macro_field else ""
            if self.macro_field and not isinstance(s.get(self.macro_field), str):
                continue
            out[sid] = (float(v), group)
        return out

    def statistic(self, values: np.ndarray, groups: np.ndarray) -> float:
        if values.size == 0:
            return float("nan")
        if self.macro_field is None:
            return self.scale * float(values.mean())
        return self.scale * float(np.mean([values[groups == g].mean() for g in np.unique(groups)]))

    def compute(self, scores: Mapping[str, Mapping[str, Any]]) -> tuple[float, int]:
        sel = self.select(scores)
        vals = np.array([v for v, _ in sel.values()], dtype=np.float64)
        groups = np.array([g for _, g in sel.values()], dtype=object)
        return self.statistic(vals, groups), len(sel)

    def describe(self) -> str:
        what = f"mean of '{self.field}'"
        if self.group_field:
            what += f" where {self.group_field} = {self.group_value!r}"
        if self.macro_field:
            what = f"unweighted mean over '{self.macro_field}' of the {what}"
        return what + (f" x {self.scale:g}" if self.scale != 1 else "")


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))


def score_fields(scores: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], dict[str, set[str]]]:
    """Numeric fields (in first-seen order) and string fields with their values."""
    numeric: dict[str, None] = {}
    strings: dict[str, set[str]] = {}
    for s in scores.values():
        for k, v in s.items():
            if is_number(v):
                numeric.setdefault(k)
            elif isinstance(v, str) and len(v) <= MAX_GROUP_LEN:  # long strings are payloads, not groups
                strings.setdefault(k, set()).add(v)
    return list(numeric), strings


def candidates(metric: str, scores: Mapping[str, Mapping[str, Any]]) -> list[Estimator]:
    """Plausible estimators for `metric`, most specific first. A field named like the metric
    (or like its part before "/") is tried before the others."""
    numeric, strings = score_fields(scores)
    head, _, tail = metric.partition("/")
    fields = sorted(numeric, key=lambda k: k not in (metric, head))  # stable: named field first
    out: list[Estimator] = []
    for scale in SCALES:
        if tail:  # "acc/testA": a field's mean over one group
            out += [Estimator(k, scale, f, tail) for k in fields for f, vals in strings.items() if tail in vals]
        if metric in numeric:  # "acc": the field of that name over everything
            out.append(Estimator(metric, scale))
        # "color_attr": a group name; the value is some field's mean over that group
        out += [Estimator(k, scale, f, metric) for k in fields for f, vals in strings.items() if metric in vals]
        out += [Estimator(k, scale) for k in fields]  # "overall": plain mean of a field
        out += [Estimator(k, scale, macro_field=f) for k in fields for f in strings]  # macro overall
    return out


def reproduces(est: Estimator, stored: Mapping[str, Any], scores: Mapping[str, Mapping[str, Any]]) -> bool:
    value, n = stored.get("value"), stored.get("n")
    if not is_number(value) or not n:
        return False
    got, count = est.compute(scores)
    return count == n and is_number(got) and abs(got - value) <= MATCH_TOL * max(1.0, abs(value))


def find_estimator(metric: str, *runs: tuple[Mapping[str, Any], Mapping[str, Mapping[str, Any]]]) -> Estimator | None:
    """The first candidate that reproduces the stored value and sample count of every given
    (stored metric, score records) pair, else None. Checking both sides of a comparison rules
    out a field that matches by accident (e.g. an all-zero timing field next to an all-zero
    accuracy in a tiny run)."""
    if not runs:
        return None
    for est in candidates(metric, runs[0][1]):
        if all(reproduces(est, stored, scores) for stored, scores in runs):
            return est
    return None


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
    boots *= est.scale / len(labels)
    lo, hi = np.quantile(boots, [(1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2])
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
