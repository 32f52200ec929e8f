"""A resumed run's loss log is cut back to its snapshot's lines, and its running means follow them."""
from __future__ import annotations

import json
from pathlib import Path

from lavida_bench.world.losslog import LossLog


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_log_keeps_the_snapshots_lines_and_drops_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "loss.jsonl"
    log = LossLog(path)
    for step, loss in enumerate((4.0, 2.0, 9.0), start=1):
        log.write("network", step, {"task": "t2i", "loss": loss})
    log.file.close()

    resumed = LossLog(path, keep=2, seconds=30.0)
    assert [r["step"] for r in lines(path)] == [1, 2] and resumed.lines == 2
    assert resumed.seconds() >= 30.0
    resumed.write("network", 3, {"task": "t2i", "loss": 5.0})
    resumed.file.close()
    assert [r["loss"] for r in lines(path)] == [4.0, 2.0, 5.0]

    assert LossLog(path, keep=0).lines == 0  # a snapshot taken before any line: the log starts over
    assert path.read_text(encoding="utf-8") == ""
