"""`lavida-bench` command line. Exit codes: 0 ok, 1 the run finished with errors (or a
regression), 2 bad configuration or input."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from lavida_bench.api import CheckpointError, ConfigError, DataError, StoreError, UsageError
from lavida_bench.config import PRESETS, RunConfig, build_config, load_config, merge_overrides, to_yaml
from lavida_bench.store import read_json

EPILOG = {
    "run": "example: lavida-bench run --config paper --tasks mmmu,chartqa --limit 20 "
           "model.checkpoint=/ckpt/LaViDa-O-v1.0 tasks.mmmu.data=/data/mmmu tasks.chartqa.data=/data/chartqa "
           "--output runs/smoke",
    "score": "example: lavida-bench score runs/paper backends.detector=mmdet "
             "backends.detector_path=/weights/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.pth",
    "report": "example: lavida-bench report runs/paper",
    "ls": "example: lavida-bench ls runs/",
    "tasks": "example: lavida-bench tasks",
    "validate": "example: lavida-bench validate --config paper model.checkpoint=/ckpt",
    "demo": "example: lavida-bench demo --output runs/demo",
    "compare": "example: lavida-bench compare runs/ckpt-A runs/ckpt-B --tolerance 'geneval:*:overall=0.01' "
               "--gate 'geneval:*:overall'",
    "leaderboard": "example: lavida-bench leaderboard runs/ckpt-A runs/ckpt-B --output leaderboard/",
    "speed": "example: lavida-bench speed --config speed --output runs/speed speed.batch_sizes=[1,4]",
    "model-info": "example: lavida-bench model-info --checkpoint /ckpt/LaViDa-O-v1.0",
}


def add_config_args(p: argparse.ArgumentParser, example: str = "tasks.mmmu.limit=20") -> None:
    p.add_argument("--config", help=f"preset name ({', '.join(PRESETS)}) or YAML file")
    p.add_argument("overrides", nargs="*", help=f"key=value overrides, e.g. {example}")


def add_selection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", help="comma-separated subset of the config's tasks (a registered task the "
                   "config lacks joins with defaults); `--tasks list` lists every task")
    p.add_argument("--limit", help="first N samples of every task, or a fraction such as 0.1 (as lmms-eval's "
                   "--limit); recorded in the manifest; a task's own limit may cut further")


def selected_config(args: argparse.Namespace, extra: list[str] = ()) -> RunConfig:
    overrides = list(args.overrides) + list(extra) + ([f"limit={args.limit}"] if args.limit else [])
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    return load_config(args.config, overrides, tasks=tasks)


def cmd_run(args: argparse.Namespace) -> int:
    from lavida_bench.app import execute
    from lavida_bench.console import results_table

    if args.tasks == "list":
        return cmd_tasks(args)
    cfg = selected_config(args, [f"output={args.output}"] if args.output else [])
    outcome = execute(cfg, score=not args.no_score)
    if not outcome.is_main:  # under torchrun only rank 0 speaks
        return 1 if outcome.errors else 0
    if outcome.results:
        print(results_table(outcome.results))
        if not args.no_report:
            from lavida_bench.reports import write_report

            print(f"report: {write_report(outcome.output)[0]}", file=sys.stderr)
    return finish(outcome.output, outcome.errors)


def cmd_tasks(args: argparse.Namespace) -> int:
    from lavida_bench.catalog import tasks_table

    print(tasks_table())
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from lavida_bench.app import score_run
    from lavida_bench.scoring import total_errors

    manifest = Path(args.run) / "manifest.json"
    if not manifest.is_file():
        raise DataError(f"{manifest}: not found; is {args.run} a run folder?")
    stored = read_json(manifest)
    raw = stored.get("config") if isinstance(stored, dict) else None
    if not isinstance(raw, dict):
        raise DataError(f"{manifest}: field 'config' missing or not an object")
    cfg = build_config(merge_overrides(raw, list(args.overrides), str(manifest)), str(manifest))
    cfg.output = args.run
    results = score_run(cfg, force=args.force)
    return finish(Path(args.run), total_errors(results))


def cmd_report(args: argparse.Namespace) -> int:
    from lavida_bench.reports import write_report

    for run in args.runs:
        for path in write_report(Path(run)):
            print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from lavida_bench.reports import compare, write_comparison

    result = compare(args.base, args.new, tolerance=parse_overrides(args.tolerance, "--tolerance", float),
                     gated=args.gate or None, direction=parse_overrides(args.direction, "--direction", direction_word))
    print(result.to_markdown())
    if args.output:
        for path in write_comparison(result, Path(args.output)):
            print(path, file=sys.stderr)
    return result.exit_code()


def parse_overrides(items: list[str], flag: str, convert: Callable[[str], Any]) -> dict[str, Any]:
    """`PATTERN=VALUE` arguments -> {pattern: value}; anything else is a usage error (exit 2)."""
    out = {}
    for item in items:
        pattern, sep, value = item.rpartition("=")
        try:
            if not sep or not pattern:
                raise ValueError("expected PATTERN=VALUE")
            out[pattern] = convert(value)
        except ValueError as err:
            raise UsageError(f"{flag} {item!r}: {err} (e.g. {flag} 'geneval:*:overall=0.01'; a value is in "
                             f"the metric's own units, so one number cannot fit every metric)") from err
    return out


def direction_word(value: str) -> str:
    if value not in ("higher", "lower"):
        raise ValueError("the direction must be 'higher' or 'lower'")
    return value


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from lavida_bench.reports import leaderboard, write_leaderboard

    board = leaderboard(args.runs, include_published=not args.no_published,
                        include_unofficial=args.include_unofficial)
    print(board.to_markdown())
    if args.output:
        for path in write_leaderboard(board, Path(args.output)):
            print(path, file=sys.stderr)
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from lavida_bench.inventory import describe_runs

    root = Path(args.root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (give the folder that holds your run folders)")
    print(describe_runs(root))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from lavida_bench.app import validate
    from lavida_bench.safety import redact

    cfg = selected_config(args)
    problems = validate(cfg)
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 2
    print(redact(to_yaml(cfg)))  # a key inside a config value is not echoed to the console
    print("config ok: every path it names exists and every task's data loads")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lavida_bench.console import results_table
    from lavida_bench.demo import run_demo

    outcome, checks = run_demo(Path(args.output))
    if outcome.results:
        print(results_table(outcome.results))
    for check in checks:
        state = "as expected" if check.as_expected else f"UNEXPECTED (expected exit {check.expected})"
        print(f"regression demo, {check.what}: {check.summary[0]} - {state}")
    return finish(outcome.output, outcome.errors)


def cmd_speed(args: argparse.Namespace) -> int:
    from lavida_bench.config import speed_problems
    from lavida_bench.speed import run_speed

    cfg = load_config(args.config or "speed", args.overrides)
    problems = speed_problems(cfg.speed)
    if problems:
        raise ConfigError(problems, args.config or "preset speed")
    output = Path(args.output or cfg.output)
    run_speed(cfg, output)
    print(f"done: {output / 'speed.md'}")
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from lavida_bench.model.info import model_info, render

    if args.checkpoint and not Path(args.checkpoint).is_dir():
        raise ConfigError([f"--checkpoint: folder {args.checkpoint} does not exist (expected a checkpoint "
                           "folder in the release layout)"])
    info = model_info(args.preset, args.checkpoint)
    print(json.dumps(info, indent=2, default=str) if args.json else render(info))
    keys = info.get("checkpoint", {}).get("keys", {})
    return 1 if any(keys.values()) else 0


def finish(output: Path, errors: int) -> int:
    from lavida_bench.trust import read_trust, render

    if errors:
        print(f"finished with {errors} error(s); see error records under {output}/records", file=sys.stderr)
    else:
        print(f"done: {output}")
    print(render(read_trust(output)), file=sys.stderr if errors else sys.stdout)  # the run's trust facts, last
    return 1 if errors else 0


def add_verdict_args(name: str, p: argparse.ArgumentParser) -> None:
    """Arguments of the commands that turn scores into verdicts: score, compare, leaderboard."""
    if name == "score":
        p.add_argument("run", help="run folder")
        p.add_argument("overrides", nargs="*", help="key=value overrides (e.g. backends.*)")
        p.add_argument("--force", action="store_true", help="re-score every record (default: only records "
                       "not yet scored, scored with errors, or scored by other evaluators than the configured ones)")
    if name == "compare":
        p.add_argument("base", help="baseline run folder")
        p.add_argument("new", help="new run folder")
        p.add_argument("--tolerance", action="append", default=[], metavar="PATTERN=VALUE",
                       help="smallest difference that counts, in the metric's own units, for metrics matching "
                            "the task:variant:metric pattern (repeatable; default: each metric's own)")
        p.add_argument("--direction", action="append", default=[], metavar="PATTERN=higher|lower",
                       help="override which way is better (e.g. to gate a diagnostic such as latency_s)")
        p.add_argument("--gate", action="append", help="task:variant:metric pattern that gates the exit "
                       "code (repeatable; default: every non-diagnostic metric); one matching nothing is an error")
        p.add_argument("--output", help="also write compare.md/.json/.html here")
    if name == "leaderboard":
        p.add_argument("runs", nargs="+", help="run folders")
        p.add_argument("--no-published", action="store_true", help="leave out the paper's numbers")
        p.add_argument("--include-unofficial", action="store_true",
                       help="also rank runs not comparable with the paper (marked as such)")
        p.add_argument("--output", help="also write leaderboard.md/.json here")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lavida-bench", description="Evaluate and benchmark Lavida-O.")
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
        "run": (cmd_run, "generate outputs for every task x variant of a config, score them, print the "
                         "results table and write report.md / report.html"),
        "score": (cmd_score, "(re)score an existing run folder without regenerating"),
        "report": (cmd_report, "write report.md / report.html for run folders"),
        "compare": (cmd_compare, "regression check: paired per-sample differences between two runs "
                                 "(exit 1 if a gated metric got worse, 2 if the runs are not comparable)"),
        "leaderboard": (cmd_leaderboard, "rank runs (and published numbers) per benchmark and overall"),
        "ls": (cmd_ls, "list run folders (searched recursively) and how complete they are"),
        "tasks": (cmd_tasks, "list every task: capability, default variants, data layout, official evaluator"),
        "validate": (cmd_validate, "check a config and every path it names, without running"),
        "demo": (cmd_demo, "every task and variant on the micro model trained on the synthetic world, a regression demo, reports"),
        "speed": (cmd_speed, "latency, throughput, NFE, peak memory and floors per capability; speedups "
                             "measured side by side (random weights at any size)"),
        "model-info": (cmd_model_info, "config, parameter counts per branch/task, checkpoint key report"),
    }
    for name, (fn, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG[name])
        p.set_defaults(fn=fn)
        if name in ("run", "validate"):
            add_config_args(p)
            add_selection_args(p)
        if name == "speed":
            add_config_args(p, example="speed.batch_sizes=[1,4] speed.model_preset=official")
        if name == "run":
            p.add_argument("--output", help="run folder (default: the config's `output`)")
            p.add_argument("--no-score", action="store_true", help="generation stage only")
            p.add_argument("--no-report", action="store_true", help="do not write report.md / report.html")
        add_verdict_args(name, p)
        if name == "report":
            p.add_argument("runs", nargs="+", help="run folders")
        if name == "ls":
            p.add_argument("root", nargs="?", default="runs", help="folder holding run folders")
        if name == "speed":
            p.add_argument("--output", help="folder for speed.json and speed.md (default: the config's `output`)")
        if name == "model-info":
            src = p.add_mutually_exclusive_group()
            src.add_argument("--preset", choices=["official", "tiny"], help="a built-in size (default: official)")
            src.add_argument("--checkpoint", help="a checkpoint folder in the release layout")
            p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if name == "demo":
            p.add_argument("--output", default="runs/demo", help="where to write the demo run")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ConfigError, DataError, StoreError, CheckpointError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
