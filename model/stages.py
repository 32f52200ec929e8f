"""Per-request seeds and device-synchronised stage timing: what every pipeline part records."""
from __future__ import annotations

import time
from typing import Any, Sequence

import torch

from lavida_bench.api import Stage, Trace
from lavida_bench.timing import peak_memory, synchronize

STAGE_SEEDS = {"plan": 1, "draw": 2, "judge": 3, "understand": 4, "ground": 5, "feedback": 6}


def stage_seed(seed: int, stage: str, round_: int = 0) -> int:
    """A request's seed for one stage (and reflection round): independent of its batch."""
    return (seed * 1_000_003 + STAGE_SEEDS[stage] * 10_007 + round_) % (2**63)


def generators(device: torch.device, seeds: Sequence[int]) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]


class StageClock:
    """Device-synchronised wall time of one batched stage."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self) -> "StageClock":
        synchronize(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.start


def trace_of(stages: list[Stage], steps: int, device: torch.device, trace: Trace | None = None) -> Trace:
    """Fill a trace's totals from its stages (a batched stage's time is shared by its requests)."""
    trace = trace or Trace()
    trace.stages = list(stages)
    trace.nfe = sum(s.nfe for s in stages)
    trace.steps = steps
    trace.latency_s = sum(s.seconds for s in stages)
    trace.peak_memory_bytes = peak_memory(device)
    return trace
