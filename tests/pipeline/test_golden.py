"""Outputs equal the golden record (tests/pipeline/golden.py): codes, tokens, texts, boxes, plans,
verdicts and forward-pass counts of every capability on the tiny model with fixed seeds."""
from __future__ import annotations

import json

import pytest

from tests.pipeline import golden


@pytest.fixture(scope="module")
def expected_outputs() -> dict:
    return json.loads(golden.GOLDEN.read_text())


@pytest.mark.parametrize("capability", ["generate", "edit", "understand", "ground"])
def test_outputs_equal_golden(pipe, monkeypatch, expected_outputs, capability):
    got = golden.record(pipe, monkeypatch, capability)[capability]
    want = expected_outputs[capability]
    assert got["codes"] == want["codes"]
    assert got["tokens"] == want["tokens"]
    assert got["results"] == want["results"]
