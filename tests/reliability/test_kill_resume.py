"""SIGKILL at random points (seeded kill times) during generation, scoring, a record write and an
image write; the resumed run must equal an uninterrupted one: same records (minus wall-clock
fields), scores, metrics.json bytes and image bytes; no duplicate, no missing id, no torn line
or partial image accepted. One case resumes under torchrun with two processes.

Killed runs are forked children of the test process (real processes, real SIGKILL) so that
twelve kills cost no interpreter start-ups; the torchrun case is a real subprocess.
"""
from __future__ import annotations

import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lavida_bench.app import execute
from lavida_bench.store import read_jsonl
from tests.reliability.fakes import (
    PaintModel,
    make_config,
    slow_down_image_renames,
    slow_down_record_writes,
    slow_down_scoring,
    write_items,
)
from tests.reliability.snapshot import ids, snapshot

ROOT = Path(__file__).resolve().parents[2]
N = 16  # samples per task
SEEDS = (0, 1, 2)  # kill-time seeds


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    for task in ("echo", "paint"):
        write_items(root / task, N)
    return {"echo": root / "echo", "paint": root / "paint"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, data: dict[str, Path]) -> dict:
    out = tmp_path_factory.mktemp("reference") / "run"
    execute(make_config(out, data), model=PaintModel(), progress=False)
    return snapshot(out)


def child(out: Path, data: dict[str, Path], model_delay: float, score_delay: float, record_delay: float,
          image_delay: float) -> None:
    if record_delay:
        slow_down_record_writes(record_delay)
    if image_delay:
        slow_down_image_renames(image_delay)
    if score_delay:
        slow_down_scoring(score_delay)
    execute(make_config(out, data), model=PaintModel(model_delay), progress=False)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def torn(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")


def temporaries(run: Path) -> list[Path]:
    return list((run / "images").rglob(".*.tmp*")) if (run / "images").exists() else []


def kill_when(out: Path, data: dict[str, Path], trigger: Callable[[], bool], what: str, delay: float = 0.0,
              model_delay: float = 0.0, score_delay: float = 0.0, record_delay: float = 0.0,
              image_delay: float = 0.0) -> None:
    """Start a run in a child, SIGKILL it `delay` s after `trigger` first holds; it must die by the kill."""
    proc = multiprocessing.get_context("fork").Process(
        target=child, args=(out, data, model_delay, score_delay, record_delay, image_delay), daemon=True)
    proc.start()
    try:
        wait_for(lambda: trigger() or not proc.is_alive(), what)
        time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    assert proc.exitcode == -signal.SIGKILL, f"the run ended before the kill ({what}); exit {proc.exitcode}"


def resume_and_compare(out: Path, data: dict[str, Path], reference: dict) -> None:
    model = PaintModel()
    execute(make_config(out, data), model=model, progress=False)
    assert snapshot(out) == reference
    for task in ("echo", "paint"):
        assert ids(out, task) == [f"s{i:03d}" for i in range(N)]


def echo_part(out: Path) -> Path:
    return out / "records/echo/plain/outputs.part-r0.jsonl"


def paint_part(out: Path) -> Path:
    return out / "records/paint/plain/outputs.part-r0.jsonl"


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_during_generation(tmp_path, data, reference, seed):
    rng = random.Random(seed)
    out = tmp_path / "run"
    kill_when(out, data, lambda: lines(echo_part(out)) >= 1, "first record", delay=rng.uniform(0.0, 0.5),
              model_delay=0.02)
    assert not (out / "metrics.json").exists(), "the kill must land before scoring"
    resume_and_compare(out, data, reference)


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_during_scoring(tmp_path, data, reference, seed):
    rng = random.Random(seed)
    out = tmp_path / "run"
    scores = out / "records/echo/plain/scores.jsonl"
    kill_when(out, data, scores.exists, "scoring to start", delay=rng.uniform(0.0, 0.8), score_delay=0.03)
    assert (out / "records/paint/plain/outputs.jsonl").exists(), "generation must have finished"
    resume_and_compare(out, data, reference)


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_during_a_record_write(tmp_path, data, reference, seed):
    """The child writes each record in halves with a pause between; the kill lands in the
    pause of a seeded record number, leaving a torn trailing line."""
    k = random.Random(seed).randint(1, N - 2)
    out = tmp_path / "run"
    kill_when(out, data, lambda: lines(echo_part(out)) >= k and torn(echo_part(out)),
              f"record {k + 1} half-written", record_delay=0.05)
    records, was_torn = read_jsonl(echo_part(out))
    assert was_torn and len(records) == k
    resume_and_compare(out, data, reference)


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_during_an_image_write(tmp_path, data, reference, seed):
    """The kill lands after a seeded image was written under its temporary name and before the
    rename: no record may point at it, and the resume removes the temporary."""
    k = random.Random(seed).randint(0, N - 2)
    out = tmp_path / "run"
    kill_when(out, data, lambda: lines(paint_part(out)) >= k and bool(temporaries(out)),
              f"image {k + 1} under its temporary name", image_delay=0.05)
    assert temporaries(out)
    done = {r["id"] for r in read_jsonl(paint_part(out))[0]}
    for rec in read_jsonl(paint_part(out))[0]:
        assert (out / rec["output"]["image"]).is_file()  # every record's image is complete
    pending = [p.name for p in temporaries(out)]
    assert not any(name.split(".png")[0].lstrip(".") in done for name in pending)
    resume_and_compare(out, data, reference)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_killed_single_process_run_resumes_on_two_processes(tmp_path, data, reference):
    out = tmp_path / "run"
    kill_when(out, data, lambda: lines(paint_part(out)) >= 3, "paint records", delay=0.1, model_delay=0.02)
    assert not (out / "records/paint/plain/outputs.jsonl").exists()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "tests.reliability.fakes", str(out), str(data["echo"]), str(data["paint"])]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = (out / "manifest.json").read_text()
    assert '"world_size": 2' in manifest  # the resume really ran on two processes
    assert snapshot(out) == reference
