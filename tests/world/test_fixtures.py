"""The demo's world fixtures load through every task's own loader, with their truth intact."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lavida_bench.app import build_tasks
from lavida_bench.config import load_config
from lavida_bench.runner import load_samples
from lavida_bench.world.fixtures import WRITERS, write_world_fixtures

SIZES = {"geneval": 6, "dpg_bench": 2, "fid30k": 3, "imgedit": 4, "refcoco": 5, "mmmu": 3, "chartqa": 2}


def test_every_task_loads_its_world_fixture(tmp_path: Path) -> None:
    assert set(SIZES) == set(WRITERS)
    data = write_world_fixtures(tmp_path, SIZES, seed=3)
    only_val = "tasks.refcoco.options.splits=[refcoco/val]"  # the one split the world writes
    cfg = load_config("demo", [f"tasks.{t}.data={p}" for t, p in data.items()] + [only_val])
    samples = load_samples(cfg, build_tasks(cfg))
    expected = {**SIZES, "chartqa": 2 * SIZES["chartqa"]}  # human + augmented splits
    assert {t: len(s) for t, s in samples.items()} == expected
    metas = [json.loads(x) for x in (data["geneval"] / "evaluation_metadata.jsonl").read_text().splitlines()]
    assert [m["tag"] for m in metas] == ["single_object", "two_object", "counting", "colors", "position", "color_attr"]
    again = write_world_fixtures(tmp_path / "again", SIZES, seed=3)
    for task in SIZES:  # seeded: the same files byte for byte
        first = sorted(p.relative_to(data[task]) for p in data[task].rglob("*") if p.is_file())
        assert first == sorted(p.relative_to(again[task]) for p in again[task].rglob("*") if p.is_file())
        assert all((data[task] / f).read_bytes() == (again[task] / f).read_bytes() for f in first), task


@pytest.mark.xfail(strict=True, reason="the shipped weights were trained on the world's own multiple-choice "
                   "form (one newline before the instruction, no image tag); the mix can only change with a "
                   "retrain (docs/benchmarks.md, 'The MMMU-style questions')")
def test_the_world_trains_multiple_choice_in_the_mmmu_task_s_prompt() -> None:
    """The demo asks MMMU-style questions through the MMMU task's prompt (lmms-eval's format), so
    the micro model must have been trained on that text: asked in its training form it answers
    32/32 of a set right, in the task's form 10/32 (21 empty answers)."""
    import numpy as np

    from lavida_bench.tasks.mmmu import build_prompt
    from lavida_bench.world.fixtures import MMMU_QUESTION
    from lavida_bench.world.language import questions
    from lavida_bench.world.micro import WORLD_SIDE
    from lavida_bench.world.scene import sample_scene

    rng = np.random.default_rng(0)
    trained = next(qa.question for qa in questions(sample_scene(rng, WORLD_SIDE), rng) if qa.kind == "choice")
    asked = build_prompt(MMMU_QUESTION, [str(v) for v in range(1, 5)], "multiple-choice")
    assert trained == asked
