"""Soak test (not in CI): run the smoke config again and again, SIGKILL it at random moments,
resume it, and check after every kill and at the end that the harness kept its promises.

    .venv/bin/python scripts/soak.py --rounds 5 --output runs/soak

Each round starts a fresh run folder and runs `lavida-bench run --config smoke` (tiny Lavida-O,
synthetic fixtures, every task and variant, `--limit` samples each, small images) as a
subprocess; a kill lands after a seeded random delay; the run is resumed until it finishes on
its own (after 1 to `--max-kills` kills). A round may resume on two processes
(`--two-process-share`, via torchrun). Checked:

- after every kill: every JSONL file reads (a torn trailing line is allowed, nothing worse), and
  every image an ok record names decodes completely;
- at the end of a round: `store.audit` finds nothing (one merged file per task/variant, each id
  once, no shard or temporary left) and `store.stable_snapshot` equals the uninterrupted
  reference's (records, scores and metrics minus wall-clock fields; image bytes).

Prints one JSON summary line and writes it to OUTPUT/soak.json. Exit 0 when every round passed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lavida_bench.api import StoreError
from lavida_bench.config import load_config
from lavida_bench.store import RunStore, audit, image_problems, read_jsonl, record_images, stable_snapshot

RESOLUTION = 64  # the smoke config's images at 1024 px take minutes per round on a CPU; 64 px keep every path


def run_command(output: Path, assets: Path, limit: int, processes: int) -> list[str]:
    checkpoint, data = assets / "checkpoint", assets / "data"
    overrides = [f"model.checkpoint={checkpoint}", f"model.resolution={RESOLUTION}"]
    for name in load_config("smoke").tasks:
        overrides += [f"tasks.{name}.data={data / name}", f"tasks.{name}.limit={limit}"]
    cli = ["-m", "lavida_bench.cli", "run", "--config", "smoke", *overrides, "--output", str(output)]
    if processes == 1:
        return [sys.executable, *cli]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_port", str(free_port()), *cli]


def prepare_assets(root: Path) -> None:
    """The smoke config's tiny random-weight checkpoint and one fixture folder per task."""
    from lavida_bench.model.tiny import make_tiny_checkpoint
    from lavida_bench.tasks import TASKS

    make_tiny_checkpoint(root / "checkpoint", seed=0)
    for name in load_config("smoke").tasks:
        TASKS.get(name).make_fixture(root / "data" / name, seed=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def after_kill_problems(run: Path) -> list[str]:
    """What a kill may never leave behind: a corrupt line before the last, or an ok record
    pointing at an image that does not decode."""
    problems = []
    for path in sorted(run.glob("records/*/*/*.jsonl")):  # record files (a judge cache is not one)
        try:
            records, _ = read_jsonl(path)
        except StoreError as err:  # a corrupt line before the last: report it, don't stop
            problems.append(f"{path}: {err}")
            continue
        for rec in records:
            if rec.get("status") == "ok":
                for rel in record_images(rec):
                    problems += image_problems(run / rel, rec["id"])
    return problems


def soak_round(index: int, root: Path, assets: Path, args: argparse.Namespace, rng: random.Random,
               reference: dict[str, Any]) -> dict[str, Any]:
    run = root / f"round{index:03d}"
    log = root / f"round{index:03d}.log"
    kills, problems, starts = 0, [], 0
    processes = 2 if rng.random() < args.two_process_share else 1
    planned = rng.randint(1, args.max_kills)
    while True:
        procs = processes if kills else 1  # the first attempt runs on one process, resumes may not
        proc = start(run_command(run, assets, args.limit, procs), log)
        starts += 1
        delay = rng.uniform(args.min_kill_s, args.max_kill_s) if kills < planned else None
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            problems += [f"after kill {kills}: {p}" for p in after_kill_problems(run)]
            continue
        if proc.returncode not in (0, 1):
            problems.append(f"run exited with {proc.returncode}; see {log}")
        break
    problems += audit(RunStore(run))
    shot = stable_snapshot(RunStore(run))
    differing = sorted(k for k in set(shot) | set(reference) if shot.get(k) != reference.get(k))
    problems += [f"differs from the uninterrupted run: {k}" for k in differing]
    return {"round": index, "kills": kills, "starts": starts, "resume_processes": processes, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("runs/soak"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=2, help="samples per task")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    parser.add_argument("--max-kills", type=int, default=4, help="kills per round: 1 to this many, seeded")
    parser.add_argument("--min-kill-s", type=float, default=3.0, help="earliest kill after a (re)start")
    parser.add_argument("--max-kill-s", type=float, default=30.0, help="latest kill after a (re)start")
    parser.add_argument("--two-process-share", type=float, default=0.3,
                        help="share of rounds whose resumes run on two processes (torchrun)")
    args = parser.parse_args(argv)
    root = args.output.resolve()
    root.mkdir(parents=True, exist_ok=True)
    assets = root / "assets"
    prepare_assets(assets)
    started = time.time()
    reference_run = root / "reference"
    if not (reference_run / "metrics.json").exists():
        done = subprocess.run(run_command(reference_run, assets, args.limit, 1), capture_output=True, check=False)
        if done.returncode not in (0, 1):
            sys.stderr.write(done.stdout.decode(errors="replace")[-3000:])
            return 2
    reference = stable_snapshot(RunStore(reference_run))
    rng = random.Random(args.seed)
    rounds = []
    for i in range(args.rounds):
        result = soak_round(i, root, assets, args, rng, reference)
        rounds.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
    summary = {"rounds": len(rounds), "kills": sum(r["kills"] for r in rounds),
               "two_process_rounds": sum(r["resume_processes"] == 2 for r in rounds),
               "failed_rounds": [r["round"] for r in rounds if r["problems"]],
               "limit": args.limit, "seed": args.seed, "minutes": round((time.time() - started) / 60, 1)}
    (root / "soak.json").write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=2) + "\n")
    print(json.dumps(summary))
    return 1 if summary["failed_rounds"] else 0


if __name__ == "__main__":
    sys.exit(main())
