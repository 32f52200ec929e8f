"""Device-synchronised timing and the hardware floor.

`timed` runs a callable with CUDA events on GPU (perf_counter after a synchronize on CPU) and
returns seconds. `measure_device` measures what the floor needs: the dense matmul rate and the
memory bandwidth of this device, in the dtype the model runs in. `floor_seconds` turns a
workload's FLOPs and bytes into the time those two rates imply (a roofline: the larger of the
compute time and the memory time).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """Seconds one call takes, synchronised with the device, and the call's result."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / 1000.0, out
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


@dataclass(frozen=True)
class Spread:
    """Median and spread of repeated measurements."""

    median: float
    p10: float
    p90: float
    n: int

    @staticmethod
    def of(values: list[float]) -> "Spread":
        xs = sorted(values)
        q = lambda f: xs[min(len(xs) - 1, int(round(f * (len(xs) - 1))))]  # noqa: E731
        return Spread(statistics.median(xs), q(0.1), q(0.9), len(xs))

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class DeviceRates:
    device: str
    dtype: str
    matmul_flops: float  # FLOP/s measured on a square matmul
    bandwidth_bytes: float  # bytes/s measured on a large copy (read + write)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def measure_device(device: torch.device, dtype: torch.dtype, n: int | None = None,
                   repeats: int = 5) -> DeviceRates:
    """Best-of-`repeats` matmul rate and copy bandwidth (best-of: the floor is what the hardware
    can do, not what it did on a noisy run)."""
    n = n or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    timed(lambda: a @ b, device)
    mm = min(timed(lambda: a @ b, device)[0] for _ in range(repeats))
    elems = (1 << 28) if device.type == "cuda" else (1 << 24)
    src = torch.empty(elems, device=device, dtype=dtype)
    dst = torch.empty_like(src)
    timed(lambda: dst.copy_(src), device)
    cp = min(timed(lambda: dst.copy_(src), device)[0] for _ in range(repeats))
    nbytes = 2 * src.numel() * src.element_size()
    return DeviceRates(str(device), str(dtype).replace("torch.", ""), 2 * n**3 / mm, nbytes / cp)


def floor_seconds(flops: float, bytes_moved: float, rates: DeviceRates) -> float:
    return max(flops / rates.matmul_flops, bytes_moved / rates.bandwidth_bytes)


def peak_memory(device: torch.device) -> int:
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else 0
