"""Synthetic datasets generated once per test session (they are read-only for the tests)."""
from __future__ import annotations

from pathlib import Path

import pytest

from lavida_bench.tasks.base import ScoreContext


@pytest.fixture(scope="session")
def refcoco_dir(tmp_path_factory) -> Path:
    from lavida_bench.tasks.refcoco import RefCOCO

    return RefCOCO.make_fixture(tmp_path_factory.mktemp("refcoco"), seed=0)


@pytest.fixture(scope="session")
def mmmu_dir(tmp_path_factory) -> Path:
    from lavida_bench.tasks.mmmu import MMMU

    return MMMU.make_fixture(tmp_path_factory.mktemp("mmmu"), seed=0)


@pytest.fixture(scope="session")
def chartqa_dir(tmp_path_factory) -> Path:
    from lavida_bench.tasks.chartqa import ChartQA

    return ChartQA.make_fixture(tmp_path_factory.mktemp("chartqa"), seed=0)


@pytest.fixture
def ctx(tmp_path) -> ScoreContext:
    return ScoreContext(run_dir=tmp_path, seed=0)
