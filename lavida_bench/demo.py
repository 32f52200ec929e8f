"""`lavida-bench demo`: the whole product on a CPU in a few minutes, on a model that learned.

The model is the micro Lavida-O trained on the synthetic world (`lavida_bench/world/weights`,
made by `tools/train_world.py`; docs/benchmarks.md "The synthetic world's micro model"). Every
benchmark runs on world fixtures in its official file format whose answers the renderer knows,
scored by the world's strict detectors (the stand-in backends), beside the constant reference
baseline on the same data. Then the regression demo: a gate subset runs on the shipped weights,
on the same command's under-trained weights (`early/`) and on the shipped weights under another
seed, and `compare` judges them as it would a new checkpoint; the first comparison should name
regressed metrics (exit 1) and the second find no detectable change (exit 0). A comparison that
does not is counted as an error, so the demo fails. Last, a short speed run (tiny random-weight
model: speed does not depend on the weights) and the reports.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from lavida_bench.app import Outcome, execute
from lavida_bench.config import RunConfig, load_config

WEIGHTS = Path(__file__).resolve().parent / "world" / "weights"  # checkpoint/, early/, train.json
FIXTURE_SEED = 0
# Items per benchmark: enough for paired CIs on large effects, few enough for 3 minutes on 2 cores
# (GenEval: 5 prompts of each of the 6 kinds; ChartQA: per split).
FIXTURE_SIZES = {"geneval": 30, "dpg_bench": 8, "fid30k": 32, "imgedit": 32, "refcoco": 48, "mmmu": 24,
                 "chartqa": 12}
# The regression demo's gate: one generation and one grounding benchmark, each with at least
# api.MIN_N samples so that its verdicts gate (a smaller one is reported "too few samples", never
# gated: the fixture's 24 MMMU-style questions could only be shown, so they are not run here).
GATE = ["geneval", "refcoco"]
GATE_SETTINGS = ["tasks.geneval.variants=[plain]", "tasks.refcoco.variants=[steps1]"]


def demo_config(output: Path, kind: str, checkpoint: Path, data: dict[str, Path],
                extra: list[str] | None = None, tasks: list[str] | None = None) -> RunConfig:
    overrides = [f"output={output}", f"model.kind={kind}", f"model.checkpoint={checkpoint}"]
    overrides += [f"tasks.{name}.data={path}" for name, path in data.items()]
    return load_config("demo", overrides + list(extra or []), tasks=tasks)


@dataclass
class GateCheck:
    """One `compare` of the regression demo and the exit code it was expected to give."""

    what: str
    exit_code: int
    expected: int
    summary: list[str]

    @property
    def as_expected(self) -> bool:
        return self.exit_code == self.expected


def gate_check(what: str, base: Path, new: Path, expected: int, out: Path) -> GateCheck:
    from lavida_bench.reports import compare, write_comparison

    result = compare(base, new)
    write_comparison(result, out)
    return GateCheck(what, result.exit_code(), expected, result.summary())


def regression_demo(root: Path, weights: Path, data: dict[str, Path]) -> list[GateCheck]:
    """Gate runs of the shipped, under-trained and reseeded weights, and the two comparisons."""
    gate = {name: data[name] for name in GATE}

    def run(name: str, checkpoint: Path, seed: int) -> Path:
        cfg = demo_config(root / name, "lavida_o", checkpoint, gate, [*GATE_SETTINGS, f"seed={seed}"], GATE)
        return execute(cfg).output

    shipped = run("shipped", weights / "checkpoint", 0)
    early = run("early", weights / "early", 0)
    reseeded = run("shipped_seed1", weights / "checkpoint", 1)
    return [gate_check("shipped -> under-trained (early step)", shipped, early, 1, root / "compare_early"),
            gate_check("shipped -> shipped under seed 1", shipped, reseeded, 0, root / "compare_seed")]


# A short speed run (one repeat, batch 1, 128 px) so the demo's report has its speed table and
# the side-by-side comparisons of the product's exact optimisations; `lavida-bench speed --config
# speed` is the full suite (with planning + reflection, whose stage costs the main report gives,
# and the approximate image prompt cache).
DEMO_SPEED = ["speed.cases=[understand,ground1,ground4,generate,edit]", "speed.batch_sizes=[1]",
              "speed.repeats=1", "speed.resolutions=[128]", "speed.understand_tokens=32",
              "speed.comparisons=[prefix_cache,image_only,cfg_batching,ground_vs_ar]"]


def run_demo_speed(folder: Path) -> None:
    from lavida_bench.speed import run_speed

    run_speed(load_config("speed", DEMO_SPEED), folder)


def run_demo(output: Path, weights: Path = WEIGHTS,
             sizes: dict[str, int] | None = None) -> tuple[Outcome, list[GateCheck]]:
    """The main run's outcome (its errors include the baseline's and every unexpected gate
    check) and the regression demo's checks."""
    from lavida_bench.reports import write_report
    from lavida_bench.world.fixtures import write_world_fixtures

    if not (weights / "checkpoint" / "config.json").exists():
        raise FileNotFoundError(f"{weights}: no trained world weights (checkpoint/config.json); "
                                "train them with tools/train_world.py")
    data = write_world_fixtures(output / "assets" / "data", sizes or FIXTURE_SIZES, seed=FIXTURE_SEED)
    checkpoint = weights / "checkpoint"
    baseline = execute(demo_config(output / "constant", "constant", checkpoint, data))
    print(f"reference baseline run: {baseline.output}", file=sys.stderr)
    main = execute(demo_config(output / "lavida_o", "lavida_o", checkpoint, data))
    checks = regression_demo(output / "regression", weights, data)
    run_demo_speed(main.output / "speed")
    for run in (baseline.output, main.output):
        write_report(run)
    unexpected = sum(not c.as_expected for c in checks)
    return Outcome(main.output, main.generation, main.results, main.errors + baseline.errors + unexpected), checks
