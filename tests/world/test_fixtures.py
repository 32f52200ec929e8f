"""The demo's world fixtures load through every task's own loader, with their truth intact."""
from __future__ import annotations

import json
from pathlib import Path

from lavida_bench.app import build_tasks
from lavida_bench.config import load_config
from lavida_bench.model.tokens import chat_prompt
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


def test_the_tuning_mix_asks_what_the_understanding_tasks_ask(tmp_path: Path) -> None:
    """The demo asks the micro model through each task's own prompt (lmms-eval's formats). Trained
    only on the world's own phrasing, the first-stage weights answered 0/32 of a ChartQA-phrased
    set (all empty) and 10/32 of the MMMU-phrased one (docs/benchmarks.md, "The benchmarks'
    phrasings"), so the tuning mix must hold every question the fixtures' requests send."""
    import numpy as np

    from lavida_bench.api import Variant
    from lavida_bench.model import prompts
    from lavida_bench.world.micro import WORLD_SIDE
    from lavida_bench.world.mix import TUNE_MIX, example

    rng = np.random.default_rng(0)
    trained = {example(rng, "task_qa", WORLD_SIDE, 0).prompt for _ in range(400)}
    assert TUNE_MIX["task_qa"] > 0
    data = write_world_fixtures(tmp_path, {"chartqa": 12, "mmmu": 6}, seed=3)
    cfg = load_config("demo", [f"tasks.{t}.data={p}" for t, p in data.items()])
    tasks = {name: task for name, task in build_tasks(cfg).items() if name in data}
    for name, samples in load_samples(cfg, tasks).items():
        for sample in samples:
            asked = tasks[name].request(sample, Variant("plain"))
            assert asked.capability == "understand" and len(asked.images) == 1
            assert chat_prompt(prompts.understand_user(asked.prompt, 1)) in trained, (name, asked.prompt)
