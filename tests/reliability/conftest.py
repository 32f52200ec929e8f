"""Shared fixtures: one tiny Lavida-O checkpoint for the whole reliability suite (it takes
seconds to build; tests copy it before breaking it)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lavida_bench.model.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "checkpoint", seed=0)
