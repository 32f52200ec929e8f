"""`lavida-bench` command line. Exit codes: 0 ok, 1 the run finished with errors (or a
regression), 2 bad configuration or input."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from lavida_bench.config import PRESETS, ConfigError, build_config, load_config, to_yaml
from lavida_bench.model.errors import CheckpointError
from lavida_bench.store import StoreError
from lavida_bench.tasks.base import DataError

EPILOG = {
    "run": "example: lavida-bench run --config paper model.checkpoint=/ckpt/LaViDa-O-v1.0 "
           "tasks.geneval.data=/data/geneval --output runs/paper",
    "score": "example: lavida-bench score runs/paper backends.detector=mask2former "
             "backends.detector_path=/weights/mask2former",
    "report": "example: lavida-bench report runs/paper",
    "ls": "example: lavida-bench ls runs/",
    "validate": "example: lavida-bench validate --config paper model.checkpoint=/ckpt",
    "demo": "example: lavida-bench demo --output runs/demo",
    "compare": "example: lavida-bench compare runs/ckpt-A runs/ckpt-B --tolerance 0.5 --gate 'geneval:*:overall'",
    "leaderboard": "example: lavida-bench leaderboard runs/ckpt-A runs/ckpt-B --output leaderboard/",
    "speed": "example: lavida-bench speed --config speed --output runs/speed speed.batch_sizes=[1,4]",
    "model-info": "example: lavida-bench model-info --checkpoint /ckpt/LaViDa-O-v1.0",
}


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help=f"preset name ({', '.join(PRESETS)}) or YAML file")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. tasks.mmmu.limit=20")


def cmd_run(args: argparse.Namespace) -> int:
    from lavida_bench.app import execute

    overrides = list(args.overrides) + ([f"output={args.output}"] if args.output else [])
    cfg = load_config(args.config, overrides)
    outcome = execute(cfg, score=not args.no_score)
    return finish(outcome.output, outcome.errors)


def cmd_score(args: argparse.Namespace) -> int:
    from lavida_bench.app import score_run
    from lavida_bench.scoring import total_errors

    manifest = Path(args.run) / "manifest.json"
    if not manifest.is_file():
        raise DataError(f"{manifest}: not found; is {args.run} a run folder?")
    raw = json.loads(manifest.read_text())["config"]
    from omegaconf import OmegaConf

    merged = OmegaConf.merge(OmegaConf.create(raw), OmegaConf.from_dotlist(list(args.overrides)))
    cfg = build_config(OmegaConf.to_container(merged), str(manifest))
    cfg.output = args.run
    results = score_run(cfg)
    return finish(Path(args.run), total_errors(results))


def cmd_report(args: argparse.Namespace) -> int:
    from lavida_bench.reports import write_report

    for run in args.runs:
        for path in write_report(Path(run)):
            print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from lavida_bench.reports import compare, write_comparison

    result = compare(args.base, args.new, tolerance=args.tolerance, gated=args.gate or None)
    print(result.to_markdown())
    if args.output:
        for path in write_comparison(result, Path(args.output)):
            print(path, file=sys.stderr)
    return result.exit_code()


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from lavida_bench.reports import leaderboard, write_leaderboard

    board = leaderboard(args.runs, include_published=not args.no_published)
    print(board.to_markdown())
    if args.output:
        for path in write_leaderboard(board, Path(args.output)):
            print(path, file=sys.stderr)
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from lavida_bench.inventory import describe_runs

    print(describe_runs(Path(args.root)))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from lavida_bench.app import validate

    cfg = load_config(args.config, args.overrides)
    problems = validate(cfg)
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 2
    print(to_yaml(cfg))
    print("config ok: every path it names exists")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lavida_bench.demo import run_demo

    outcome = run_demo(Path(args.output))
    return finish(outcome.output, outcome.errors)


def cmd_speed(args: argparse.Namespace) -> int:
    from lavida_bench.speed import run_speed

    cfg = load_config(args.config or "speed", args.overrides)
    output = Path(args.output or cfg.output)
    run_speed(cfg, output)
    print(f"done: {output / 'speed.md'}")
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from lavida_bench.model.info import model_info, render

    info = model_info(args.preset, args.checkpoint)
    print(json.dumps(info, indent=2, default=str) if args.json else render(info))
    keys = info.get("checkpoint", {}).get("keys", {})
    return 1 if any(keys.values()) else 0


def finish(output: Path, errors: int) -> int:
    if errors:
        print(f"finished with {errors} error(s); see error records under {output}/records", file=sys.stderr)
        return 1
    print(f"done: {output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lavida-bench", description="Evaluate and benchmark Lavida-O.")
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
        "run": (cmd_run, "generate outputs for every task x variant of a config, then score them"),
        "score": (cmd_score, "(re)score an existing run folder without regenerating"),
        "report": (cmd_report, "write report.md / report.html for run folders"),
        "compare": (cmd_compare, "regression check: paired per-sample differences between two runs "
                                 "(exit 1 if a gated metric got worse, 2 if the runs are not comparable)"),
        "leaderboard": (cmd_leaderboard, "rank runs (and published numbers) per benchmark and overall"),
        "ls": (cmd_ls, "list run folders and how complete they are"),
        "validate": (cmd_validate, "check a config and every path it names, without running"),
        "demo": (cmd_demo, "run every task and variant on a tiny model with synthetic data"),
        "speed": (cmd_speed, "latency, throughput, NFE, peak memory and floors per capability; speedups "
                             "measured side by side (random weights at any size)"),
        "model-info": (cmd_model_info, "config, parameter counts per branch/task, checkpoint key report"),
    }
    for name, (fn, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG[name])
        p.set_defaults(fn=fn)
        if name in ("run", "validate", "speed"):
            add_config_args(p)
        if name == "run":
            p.add_argument("--output", help="run folder (default: the config's `output`)")
            p.add_argument("--no-score", action="store_true", help="generation stage only")
        if name == "score":
            p.add_argument("run", help="run folder")
            p.add_argument("overrides", nargs="*", help="key=value overrides (e.g. backends.*)")
        if name == "report":
            p.add_argument("runs", nargs="+", help="run folders")
        if name == "ls":
            p.add_argument("root", nargs="?", default="runs", help="folder holding run folders")
        if name == "speed":
            p.add_argument("--output", help="folder for speed.json and speed.md (default: the config's `output`)")
        if name == "compare":
            p.add_argument("base", help="baseline run folder")
            p.add_argument("new", help="new run folder")
            p.add_argument("--tolerance", type=float, default=0.0,
                           help="differences smaller than this (metric units) count as no change")
            p.add_argument("--gate", action="append", help="task:variant:metric pattern that gates the exit "
                           "code (repeatable; default: every metric)")
            p.add_argument("--output", help="also write compare.md/.json/.html here")
        if name == "leaderboard":
            p.add_argument("runs", nargs="+", help="run folders")
            p.add_argument("--no-published", action="store_true", help="leave out the paper's numbers")
            p.add_argument("--output", help="also write leaderboard.md/.json here")
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
    except (ConfigError, DataError, StoreError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
