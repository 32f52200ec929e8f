"""The four generation tasks through the real runner and scorer: constant model, stand-in backends,
the project's own fixtures, every variant. The constant model draws flat grey images and returns
edits unchanged, so each metric's floor is known by hand."""
from __future__ import annotations

import json

import pytest

from lavida_bench.app import execute
from lavida_bench.config import load_config
from lavida_bench.tasks import TASKS

NAMES = ("geneval", "dpg_bench", "fid30k", "imgedit")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    overrides = [f"output={root / 'run'}", "model.kind=constant"]
    for name in NAMES:
        data = TASKS.get(name).make_fixture(root / "data" / name, seed=0)
        overrides += [f"tasks.{name}.data={data}", f"tasks.{name}.variants=[plain,plan,plan_reflect]"]
    overrides += ["tasks.fid30k.options.ci_rounds=5", "tasks.geneval.options.resolution=64",
                  "tasks.dpg_bench.options.protocol=grid", "tasks.imgedit.options.crop_size=64"]
    overrides += [f"backends.{kind}=standin" for kind in ("detector", "color", "vqa", "inception", "judge")]
    outcome = execute(load_config(None, overrides), progress=False)
    return outcome, root / "run"


def test_runs_without_errors(run):
    outcome, folder = run
    assert outcome.errors == 0
    metrics = json.loads((folder / "metrics.json").read_text())["tasks"]
    for name in NAMES:
        for variant in ("plain", "plan", "plan_reflect"):
            counts = metrics[name][variant]["counts"]
            assert counts["scored"] == counts["samples"] > 0


def test_floors_of_the_constant_model(run):
    metrics = json.loads((run[1] / "metrics.json").read_text())["tasks"]
    plain = {name: metrics[name]["plain"]["metrics"] for name in NAMES}
    assert plain["geneval"]["overall"]["value"] == 0.0  # a grey canvas holds no shapes
    assert plain["dpg_bench"]["overall"]["value"] == 0.0  # fixed or not, every answer is "no"
    assert plain["dpg_bench"]["overall"]["n"] == 2  # item "0" skipped (official first-row drop)
    assert plain["fid30k"]["fid"]["value"] > 1.0
    assert plain["imgedit"]["overall"]["value"] == pytest.approx(1.0)  # unchanged edits, stand-in judge
    assert plain["imgedit"]["unparseable_rate"]["value"] == 0.0  # judge failures are scoring errors, counted apart


def test_grid_protocol_makes_four_samples_per_item(run):
    lines = (run[1] / "records/dpg_bench/plain/outputs.jsonl").read_text().splitlines()
    ids = sorted(json.loads(line)["id"] for line in lines)
    assert ids == [f"{item}/{k}" for item in "012" for k in range(4)]
