"""The harness's own costs: records written behind the model, the manifest's config copy."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from lavida_bench.api import StoreError
from lavida_bench.config import load_config, to_dict
from lavida_bench.runner import WriteBehind
from lavida_bench.store import JsonlWriter, read_jsonl


def pending(record_id: str, threads: list[str]) -> Any:
    def make() -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return {"id": record_id, "status": "ok"}
    return make


def test_records_are_written_in_order_on_a_worker_thread(tmp_path: Path) -> None:
    path, threads = tmp_path / "outputs.part-r0.jsonl", []
    with JsonlWriter(path) as writer, WriteBehind(writer) as behind:
        assert behind.swap([pending("a", threads), pending("b", threads)]) == []  # still behind
        written = behind.swap([pending("c", threads)])  # the model would compute here
        assert [r["id"] for r in written] == ["a", "b"]
        assert [r["id"] for r in read_jsonl(path)[0]][:2] == ["a", "b"]  # "c" may be written already
        assert [r["id"] for r in behind.swap([])] == ["c"]
    assert [r["id"] for r in read_jsonl(path)[0]] == ["a", "b", "c"]
    assert threads and threading.current_thread().name not in threads


def test_a_write_error_is_raised_by_the_next_swap_and_stops_the_batch(tmp_path: Path) -> None:
    def full() -> dict[str, Any]:
        raise StoreError("cannot write x.png: No space left on device")

    path, threads = tmp_path / "outputs.part-r0.jsonl", []
    with JsonlWriter(path) as writer, WriteBehind(writer) as behind:
        behind.swap([pending("a", threads), full, pending("b", threads)])
        with pytest.raises(StoreError, match="No space left"):
            behind.swap([])
    assert [r["id"] for r in read_jsonl(path)[0]] == ["a"]


@pytest.mark.parametrize("preset", ["speed", "paper", "demo", "regression"])
def test_config_copy_equals_omegaconf_container(preset: str) -> None:
    cfg = load_config(preset, [])
    assert to_dict(cfg) == OmegaConf.to_container(OmegaConf.structured(cfg))
