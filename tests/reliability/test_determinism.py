"""Same config and seeds, same bytes: two CPU runs of the tiny Lavida-O (the real loader,
pipeline and samplers) give identical records, apart from the wall-clock fields that
store.VOLATILE_FIELDS names, and byte-identical images, scores and metrics."""
from __future__ import annotations

from pathlib import Path

import pytest
from lavida_bench.tasks import TASKS

from lavida_bench.app import execute
from lavida_bench.config import load_config
from lavida_bench.store import VOLATILE_FIELDS, RunStore, read_jsonl, stable_snapshot, stable_view

TASK_LIMITS = {"chartqa": 2, "geneval": 1, "refcoco": 2}
VARIANTS = {"chartqa": "[plain]", "geneval": "[plain]", "refcoco": "[steps1]"}
STANDINS = [f"backends.{b}=standin" for b in ("detector", "color", "vqa", "inception", "judge")]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fixtures")
    return {name: TASKS.get(name).make_fixture(root / name, seed=0) for name in TASK_LIMITS}


def run_twice_config(out: Path, checkpoint: Path, data: dict[str, Path]):
    overrides = [f"output={out}", "model.kind=lavida_o", f"model.checkpoint={checkpoint}", "model.device=cpu",
                 "model.dtype=float32", "model.resolution=64", "seed=7", "batch_size=2", *STANDINS]
    for name, path in data.items():
        overrides += [f"tasks.{name}.data={path}", f"tasks.{name}.limit={TASK_LIMITS[name]}",
                      f"tasks.{name}.variants={VARIANTS[name]}"]
    return load_config(None, overrides)


def test_two_cpu_runs_are_byte_identical(tmp_path, tiny_checkpoint, data):
    first = execute(run_twice_config(tmp_path / "a", tiny_checkpoint, data), progress=False)
    second = execute(run_twice_config(tmp_path / "b", tiny_checkpoint, data), progress=False)
    assert first.errors == 0 and second.errors == 0
    a, b = stable_snapshot(RunStore(tmp_path / "a")), stable_snapshot(RunStore(tmp_path / "b"))
    assert any(k.endswith(".png") for k in a), "the generation task must have produced images"
    assert {"metrics.json", "chartqa/plain/outputs", "refcoco/steps1/scores"} <= set(a)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []  # images compared byte for byte
    # the stable view drops only the documented wall-clock fields
    rec = read_jsonl(tmp_path / "a/records/chartqa/plain/outputs.jsonl")[0][0]
    assert set(rec["trace"]) - set(stable_view(rec)["trace"]) <= VOLATILE_FIELDS
    assert set(rec) == set(stable_view(rec))
