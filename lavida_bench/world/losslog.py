"""A training run's log: `loss.jsonl`, one flushed line per step, and the progress bars."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from lavida_bench.store import write_atomic


class LossLog:
    """`loss.jsonl`, one flushed line per step, and the running means the progress bar shows."""

    def __init__(self, path: Path, keep: int = 0, seconds: float = 0.0):
        """`keep` lines of an existing log stay (a resumed run's, up to its snapshot; the lines
        after it are written again); its clock starts at `seconds`."""
        kept = path.read_text(encoding="utf-8").splitlines()[:keep] if keep else []
        # cut back atomically (a kill while cutting loses no kept line), even to nothing
        write_atomic(path, "".join(line + "\n" for line in kept).encode("utf-8"))
        self.file = open(path, "a", encoding="utf-8")
        self.lines = len(kept)
        self.recent: dict[str, list[float]] = {}
        for record in map(json.loads, kept):
            self.remember(record)
        self.start = time.monotonic() - seconds

    def seconds(self) -> float:
        return time.monotonic() - self.start

    def write(self, stage: str, step: int, values: dict[str, Any]) -> None:
        record = {"stage": stage, "step": step, "seconds": round(self.seconds(), 1), **values}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        self.lines += 1
        self.remember(record)

    def remember(self, record: dict[str, Any]) -> None:
        if "task" in record:
            self.recent.setdefault(record["task"], []).append(record["loss"])
            self.recent[record["task"]] = self.recent[record["task"]][-50:]

    def means(self) -> dict[str, float]:
        return {task: round(float(np.mean(v)), 3) for task, v in sorted(self.recent.items())}

    def close(self) -> None:
        self.file.close()


class StageLog:
    """A stage's step callback: each step's values go to `loss.jsonl` and to a progress bar."""

    def __init__(self, log: LossLog, stage: str, steps: int):
        from tqdm import tqdm

        self.log, self.stage = log, stage
        self.bar = tqdm(total=steps, desc=stage, unit="step")

    def __call__(self, step: int, values: dict[str, float]) -> None:
        self.log.write(self.stage, step, {k: round(v, 5) for k, v in values.items()})
        self.bar.update(1)
        self.bar.set_postfix(values, refresh=False)

    def __enter__(self) -> "StageLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
