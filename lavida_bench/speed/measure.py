"""Measure one workload: an untimed probe (warm-up + exact pass recording), more warm-up, then
device-synchronised repeats (timing.timed: CUDA events on GPU), reported as median and spread.

The probe is the only call that records network passes (recording synchronises with the host to
read shapes); the timed repeats run the code exactly as a benchmark run would.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from lavida_bench.api import Request, Result
from lavida_bench.model.config import LavidaConfig
from lavida_bench.speed.floor import Pass, summarize
from lavida_bench.speed.record import Recording, record_passes
from lavida_bench.timing import DeviceRates, Spread, peak_memory, timed


@dataclass
class Measurement:
    """What one workload cost: batch times over the repeats and the probe's exact recording."""

    batch: int
    batch_seconds: list[float]
    probe: list[Result]
    recording: Recording | None
    peak_memory_bytes: int
    last: list[Result] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return Spread.of(self.batch_seconds).median

    def row(self, units: str, units_per_sample: float) -> dict[str, Any]:
        """The JSON row of this measurement (per-sample latency = batch time / batch size)."""
        spread = Spread.of(self.batch_seconds)
        per_sample = Spread.of([s / self.batch for s in self.batch_seconds])
        out: dict[str, Any] = {
            "batch": self.batch, "repeats": len(self.batch_seconds),
            "latency_s": per_sample.to_json(), "batch_s": spread.to_json(),
            "samples_per_s": self.batch / spread.median if spread.median > 0 else None,
            "units": units, "units_per_sample": units_per_sample,
            "units_per_s": units_per_sample * self.batch / spread.median if spread.median > 0 else None,
            "nfe": self.probe[0].trace.nfe if self.probe else None,
            "peak_memory_bytes": self.peak_memory_bytes,
        }
        if self.recording is not None:
            out.update(self.recording.summary())
        return out


def measure(fn: Callable[[list[Request]], list[Result]], requests: list[Request], device: torch.device, *,
            repeats: int, warmup: int, record: Any = None, vq: Any = None) -> Measurement:
    """Time `fn(requests)`. `record` is the network whose passes the probe records (None: no
    recording, e.g. a baseline from another library)."""
    if record is not None:
        with record_passes(record, vq) as rec:
            probe = fn(requests)
    else:
        rec, probe = None, fn(requests)
    for _ in range(max(0, warmup - 1)):
        fn(requests)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds, last = [], probe
    for _ in range(max(1, repeats)):
        s, last = timed(lambda: fn(requests), device)
        seconds.append(s)
    return Measurement(len(requests), seconds, probe, rec, peak_memory(device), last)


def with_floor(row: dict[str, Any], m: Measurement, cfg: LavidaConfig, dtype_bytes: int,
               rates: DeviceRates | None, passes: list[Pass] | None = None) -> dict[str, Any]:
    """Add FLOPs, bytes, floor seconds (per batch) and measured/floor to a measurement row."""
    if m.recording is None:
        return row
    row.update(summarize(cfg, passes if passes is not None else m.recording.passes, dtype_bytes, rates,
                         m.median_s))
    return row
