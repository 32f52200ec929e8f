"""What every measurement of one speed run shares: the model, the config, the device and its rates."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lavida_bench.api import Request, Result
from lavida_bench.config import SpeedConfig
from lavida_bench.model.network import LavidaNetwork
from lavida_bench.model.pipeline import LavidaPipeline
from lavida_bench.speed.floor import Pass
from lavida_bench.speed.measure import Measurement, measure, with_floor
from lavida_bench.timing import DeviceRates


@dataclass
class Bench:
    pipe: LavidaPipeline
    cfg: SpeedConfig
    device: torch.device
    dtype: torch.dtype
    rates: DeviceRates | None
    network: LavidaNetwork | None = None  # the real network, even while a stand-in is swapped in

    def __post_init__(self) -> None:
        self.network = self.network or self.pipe.net

    @property
    def dtype_bytes(self) -> int:
        return torch.empty(0, dtype=self.dtype).element_size()

    def run(self, fn: Callable[[list[Request]], list[Result]], requests: list[Request],
            record: bool = True) -> Measurement:
        return measure(fn, requests, self.device, repeats=self.cfg.repeats, warmup=self.cfg.warmup,
                       record=self.network if record else None, vq=self.pipe.ck.vq if record else None)

    def row(self, m: Measurement, units: str, per_sample: float, passes: list[Pass] | None = None) -> dict[str, Any]:
        return with_floor(m.row(units, per_sample), m, self.pipe.ck.config, self.dtype_bytes, self.rates, passes)
