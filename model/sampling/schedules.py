"""Pure schedules: how many tokens each step reveals, and how temperatures anneal.

Both reproduce the official release bit for bit (LaVida-O `llava/model/language_model/llada/generate.py:54-111`,
`llava/eval/predict_t2i_edit.py:377-402`), including its float32 arithmetic: float64 changes a count by
one at a few steps for some shifts, which would make image outputs diverge from the release.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

TRANSFER_SCHEDULES = ("shift", "cosine", "cosine2", "linear", "uniform")
TEMPERATURE_SCHEDULES = ("linear", "cosine2", "shift", "exp", "constant")


def _shift_curve(t: torch.Tensor, shift: float) -> torch.Tensor:
    """sigma(t) = shift*t / (1 + (shift-1)*t), float32 (release `logit_normal_schedule`, generate.py:54-111)."""
    return shift * t / (1 + (shift - 1) * t)


def _np_cos(x: torch.Tensor) -> torch.Tensor:
    # The release applies numpy's float32 cos to a float32 torch tensor (generate.py
    # `cosine_schedule*`); numpy's cos is used here too so every ulp agrees.
    return torch.from_numpy(np.cos(x.numpy()).astype(np.float32))


def _cosine_curve(t: torch.Tensor) -> torch.Tensor:
    """1 - 0.5*(1 + cos(pi*t)) (release `cosine_schedule`, generate.py:54-111)."""
    return 1 - 0.5 * (1 + _np_cos(np.pi * t.clamp(0, 1)))


def _cosine2_curve(t: torch.Tensor) -> torch.Tensor:
    """cos(pi*(1-t)/2) (release `cosine_schedule_2`, generate.py:54-111)."""
    return _np_cos(np.pi * (1 - t.clamp(0, 1)) / 2)


def _exp_curve(t: torch.Tensor) -> torch.Tensor:
    """(1 - e^(-5t)) / (1 - e^-5), clipped to [1e-4, 1] (release `exp_schedule`)."""
    z = (1 - torch.exp(-5 * t)) / (1 - float(np.exp(-5)))
    return z.clamp(0.0001, 1)


def uniform_counts(n_masked: int, steps: int) -> list[int]:
    """LLaDA's uniform split: base n//s per step, the first n%s steps one more (generate.py:217-390).

    Unlike the curve schedules the step count is not capped at n_masked, so trailing zeros are
    possible; the text sampler still spends a forward pass on such a step, as the release does.
    """
    base, remainder = divmod(n_masked, steps)
    return [base + 1 if i < remainder else base for i in range(steps)]


def _walk_off_excess(counts: list[int], excess: int) -> list[int]:
    """Remove `excess` tokens, visiting entries cyclically from the start and skipping 1s (generate.py:54-111)."""
    j = 0
    while excess > 0:
        j %= len(counts)
        if counts[j] != 1:
            counts[j] -= 1
            excess -= 1
        j += 1
    return counts


_CURVES: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "shift": _shift_curve,
    "cosine": lambda t, shift: _cosine_curve(t),
    "cosine2": lambda t, shift: _cosine2_curve(t),
    "linear": lambda t, shift: t,
}


def transfer_counts(n_masked: int, steps: int, schedule: str = "shift", shift: float = 5.0) -> list[int]:
    """Tokens to reveal at each step; sums to `n_masked`, few tokens first.

    Release algorithm (LaVida-O `generate.py:54-111`, `get_num_transfer_tokens_sch`):
    S = min(steps, n); t = linspace(0, 1, S+1) in float32; cum = trunc(sigma(t) * n);
    d = diff(cum) clamped to >= 1; the excess over n is walked off cyclically (skipping 1s);
    the result is reversed. `uniform` is the release's `schedule=None` split (generate.py:217-390).
    """
    if steps < 1:
        raise ValueError(f"transfer_counts: steps must be >= 1, got {steps}")
    if n_masked < 0:
        raise ValueError(f"transfer_counts: n_masked must be >= 0, got {n_masked}")
    if schedule == "uniform":
        return uniform_counts(n_masked, steps)
    if schedule not in _CURVES:
        raise ValueError(f"transfer_counts: unknown schedule {schedule!r}; expected one of {TRANSFER_SCHEDULES}")
    n_steps = min(steps, n_masked)
    if n_steps == 0:
        return []
    t = torch.linspace(0, 1, n_steps + 1, dtype=torch.float32)
    sigma = _CURVES[schedule](t, shift)
    cumulative = (sigma * n_masked).to(torch.int64)  # float32 product, truncated as the release does
    counts = (cumulative[1:] - cumulative[:-1]).clamp(min=1).tolist()
    counts = _walk_off_excess(counts, sum(counts) - n_masked)
    return counts[::-1]


def temperature_schedule(kind: str, n_steps: int, min_temperature: float, shift: float = 5.0) -> list[float]:
    """Per-step temperature factor annealed from 1 to `min_temperature`.

    Release (LaVida-O `predict_t2i_edit.py:377-402`, `sch_temperatures`): s_i = i/(n_steps-1)
    in float32; linear (1-s)(1-m)+m; cosine2 cos(pi*s/2)(1-m)+m (written there as
    `cosine_schedule_2(1-s)`); shift sigma_shift(1-s)(1-m)+m with `shift` the release's
    `shift_alg` (defaults to the unmasking shift); exp likewise. `constant` is 1 at every step
    (the release's `dynamic_temperature=False`).
    """
    if n_steps < 1:
        raise ValueError(f"temperature_schedule: n_steps must be >= 1, got {n_steps}")
    if kind == "constant":
        return [1.0] * n_steps
    s = torch.linspace(0, 1, n_steps, dtype=torch.float32)
    curves: dict[str, Callable[[], torch.Tensor]] = {
        "linear": lambda: 1 - s,
        "cosine2": lambda: _cosine2_curve(1 - s),
        "shift": lambda: _shift_curve(1 - s, shift),
        "exp": lambda: _exp_curve(1 - s),
    }
    if kind not in curves:
        raise ValueError(f"temperature_schedule: unknown kind {kind!r}; expected one of {TEMPERATURE_SCHEDULES}")
    factor = curves[kind]() * (1 - min_temperature) + min_temperature
    return factor.to(torch.float32).tolist()
