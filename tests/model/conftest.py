"""Shared fixtures for the model tests: one tiny checkpoint on disk (release layout), built once."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lavida_bench.model.checkpoint import Checkpoint, load_checkpoint
from lavida_bench.model.tiny import make_tiny, make_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny checkpoint folder written by the project's saver (seed 0). Treat as read-only."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ckpt"), seed=0)


@pytest.fixture(scope="session")
def tiny_loaded(tiny_dir: Path) -> Checkpoint:
    return load_checkpoint(tiny_dir)


@pytest.fixture(scope="session")
def tiny_parts():
    """(network, vq, tokenizer) of the same seed, in memory, never saved."""
    network, vq, tokenizer = make_tiny(seed=0)
    network.requires_grad_(False)
    return network, vq, tokenizer


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: with 2 OpenMP threads on a shared 2-core machine the ops spend their time in
    thread barriers (measured: tiny SigLIP 412 ms with 2 threads vs 0.8 ms with 1 under load).
    One thread keeps this folder's timings independent of other processes; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield
