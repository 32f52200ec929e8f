"""`lavida-bench demo`: the whole product on a CPU in a few minutes.

Builds a tiny Lavida-O checkpoint with seeded random weights in the release's on-disk layout,
generates small synthetic fixtures for every benchmark in its official file format, runs every
task and variant through the real runner and scorers (with stand-in evaluator backends), runs
the constant reference baseline on the same data, and writes reports. The numbers are
meaningless and the reports say so; what the demo proves is that every path works.
"""
from __future__ import annotations

import sys
from pathlib import Path

from lavida_bench.app import Outcome, execute
from lavida_bench.config import RunConfig, load_config
from lavida_bench.tasks import TASKS

DEMO_SEED = 0


def prepare_assets(root: Path) -> tuple[Path, dict[str, Path]]:
    """Tiny checkpoint + one fixture folder per demo task (reused when already there)."""
    from lavida_bench.model.tiny import make_tiny_checkpoint

    checkpoint = root / "checkpoint"
    if not (checkpoint / "config.json").exists():
        make_tiny_checkpoint(checkpoint, seed=DEMO_SEED)
    data = {}
    for name in load_config("demo").tasks:
        target = root / "data" / name
        data[name] = TASKS.get(name).make_fixture(target, seed=DEMO_SEED)
    return checkpoint, data


def demo_config(output: Path, model_kind: str, checkpoint: Path, data: dict[str, Path]) -> RunConfig:
    overrides = [f"output={output}", f"model.kind={model_kind}", f"model.checkpoint={checkpoint}"]
    overrides += [f"tasks.{name}.data={path}" for name, path in data.items()]
    return load_config("demo", overrides)


# A short speed run (one repeat, batch 1, 128 px) so the demo's report has its speed table and
# the side-by-side comparisons; `lavida-bench speed --config speed` is the full suite.
DEMO_SPEED = ["speed.cases=[understand,ground1,ground4,generate,edit,plan_reflect]", "speed.batch_sizes=[1]",
              "speed.repeats=1", "speed.resolutions=[128]", "speed.understand_tokens=32",
              "speed.comparisons=[prefix_cache,image_only,image_prompt_cache,cfg_batching,ground_vs_ar]"]


def run_demo_speed(folder: Path) -> None:
    from lavida_bench.speed import run_speed

    run_speed(load_config("speed", DEMO_SPEED), folder)


def run_demo(output: Path) -> Outcome:
    from lavida_bench.reports import write_report

    checkpoint, data = prepare_assets(output / "assets")
    baseline = execute(demo_config(output / "constant", "constant", checkpoint, data))
    print(f"reference baseline run: {baseline.output}", file=sys.stderr)
    main = execute(demo_config(output / "lavida_o", "lavida_o", checkpoint, data))
    run_demo_speed(main.output / "speed")
    for run in (baseline.output, main.output):
        write_report(run)
    return Outcome(main.output, main.generation, main.results, main.errors + baseline.errors)
