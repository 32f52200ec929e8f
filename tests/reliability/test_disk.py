"""Disk full and unwritable output: a StoreError that names the path (never a bare OSError, never
a masked one); what was written before stays valid, and the run resumes to the same result."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lavida_bench import runner
from lavida_bench import store as store_module
from lavida_bench.api import StoreError
from lavida_bench.app import execute
from lavida_bench.store import read_jsonl
from tests.reliability.fakes import PaintModel, make_config, write_items
from tests.reliability.snapshot import snapshot

N = 8


class FullAfter:
    """A raw file on a disk that fills up after `budget` complete writes: the next write gets
    half of its bytes out, then ENOSPC."""

    def __init__(self, raw: Any, budget: int):
        self._raw, self._budget = raw, budget

    def write(self, data: Any) -> int:
        if self._budget <= 0:
            view = memoryview(data)
            self._raw.write(view[:len(view) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        self._budget -= 1
        return self._raw.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


@pytest.fixture()
def data(tmp_path: Path) -> dict[str, Path]:
    for task in ("echo", "paint"):
        write_items(tmp_path / task, N)
    return {"echo": tmp_path / "echo", "paint": tmp_path / "paint"}


@pytest.fixture()
def reference(tmp_path: Path, data: dict[str, Path]) -> dict:
    out = tmp_path / "reference"
    execute(make_config(out, data), model=PaintModel(), progress=False)
    return snapshot(out)


def fill_disk_after(monkeypatch: pytest.MonkeyPatch, name: str, budget: int) -> None:
    """Files named `name` hit ENOSPC after `budget` records."""
    original_init = store_module.JsonlWriter.__init__

    def init(self: Any, path: Path) -> None:
        original_init(self, path)
        if path.name == name:
            self._file = FullAfter(self._file, budget)

    monkeypatch.setattr(store_module.JsonlWriter, "__init__", init)


@pytest.mark.parametrize("name, budget", [("outputs.part-r0.jsonl", 3), ("scores.jsonl", 5)])
def test_disk_full_mid_file_names_the_path_and_resumes(tmp_path, data, reference, monkeypatch, name, budget):
    out = tmp_path / "run"
    fill_disk_after(monkeypatch, name, budget)
    with pytest.raises(StoreError, match=rf"cannot write to {out}/records/echo/plain/{name}: No space left"):
        execute(make_config(out, data), model=PaintModel(), progress=False)
    path = out / "records/echo/plain" / name
    records, torn = read_jsonl(path)
    assert len(records) == budget and not torn  # the half-written line was cut back
    assert path.read_bytes().endswith(b"\n")
    monkeypatch.undo()  # space freed
    execute(make_config(out, data), model=PaintModel(), progress=False)
    assert snapshot(out) == reference


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_real_enospc_is_not_masked_by_the_failing_close(tmp_path):
    """On a real full device, data still buffered fails again on close; that second error must
    not replace the StoreError that names the file (the CLI turns only StoreError into a clean
    message and exit code 2)."""
    full = tmp_path / "outputs.part-r0.jsonl"
    os.symlink("/dev/full", full)
    with pytest.raises(StoreError, match=rf"cannot write to {full}: No space left on device"):
        with store_module.JsonlWriter(full) as writer:
            writer.write({"id": "a", "text": "x" * 100})


def test_unwritable_image_folder_names_the_path_and_resumes(tmp_path, data, reference, monkeypatch):
    out = tmp_path / "run"
    original = runner.run_task_variant

    def block_paint_images(cfg: Any, model: Any, task: Any, *rest: Any) -> Any:
        if task.name == "paint":  # after the run folder and its manifest exist (a fresh folder must be empty)
            (out / "images").mkdir(exist_ok=True)
            (out / "images/paint").write_text("a file where a folder must go")
        return original(cfg, model, task, *rest)

    monkeypatch.setattr(runner, "run_task_variant", block_paint_images)
    with pytest.raises(StoreError, match=rf"cannot write {out}/images/paint/plain/s000.png"):
        execute(make_config(out, data), model=PaintModel(), progress=False)
    monkeypatch.undo()
    assert len(read_jsonl(out / "records/echo/plain/outputs.jsonl")[0]) == N  # echo finished before
    (out / "images/paint").unlink()
    execute(make_config(out, data), model=PaintModel(), progress=False)
    assert snapshot(out) == reference


def test_unwritable_output_folder_is_a_store_error_before_model_time(tmp_path, data):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    model = PaintModel()
    with pytest.raises(StoreError, match=str(blocker / "run")):
        execute(make_config(blocker / "run", data), model=model, progress=False)
    assert model.calls == 0


def mount_tiny_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, timeout=10, check=False)
    return done.returncode == 0


def test_really_full_filesystem(tmp_path, data, reference):
    """A 256 KiB tmpfs (where this machine lets root mount one) fills up mid-run for real."""
    disk = tmp_path / "disk"
    if not mount_tiny_tmpfs(disk, "256k"):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * (256 * 1024 - 12 * 1024))  # leave room for a few records only
        out = disk / "run"
        with pytest.raises(StoreError, match=rf"{out}/\S+: No space left on device"):
            execute(make_config(out, data), model=PaintModel(), progress=False)
        for part in out.rglob("*.jsonl"):
            assert not read_jsonl(part)[1], f"{part}: torn line left behind"
        ballast.unlink()
        execute(make_config(out, data), model=PaintModel(), progress=False)
        assert snapshot(out) == reference
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True, timeout=10, check=False)
