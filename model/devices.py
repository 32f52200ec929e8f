"""Device, dtype and CPU-thread choices, resolved in one place for the model, the harness and the
speed suite."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; anything else is passed through."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def resolve_dtype(name: str, device: str) -> torch.dtype:
    """'auto' -> bfloat16 on CUDA (the release runs in bf16) and float32 elsewhere (CPUs are
    faster in fp32); otherwise one of DTYPES."""
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if name not in DTYPES:
        raise ValueError(f"dtype {name!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[name]


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """torch's CPU thread count set to `n` inside the block only (None: leave it alone). Tiny
    models on a small CPU spend most of their time in thread hand-offs (measured 1.3 s vs 81 s
    for two 64-step tiny images on a loaded 2-core machine), so one thread suits them."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(old)
