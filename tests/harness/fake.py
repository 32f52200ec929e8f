"""A tiny task and model for harness tests, runnable in a subprocess (kill / torchrun tests).

EchoTask: samples from data_dir/items.jsonl ({"id", "q", "a"}); the score is exact match.
SeededModel: answers from the request seed and prompt, so outputs prove seeds are per sample;
optional per-sample delay lets a test kill the process mid-run; a prompt "FAIL" raises.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from lavida_bench.api import DataError, Metric, MetricSpec, Request, Result, Sample, Trace, Variant
from lavida_bench.stats import mean_metric
from lavida_bench.tasks import TASKS
from lavida_bench.tasks.base import ScoreContext, Task


class EchoTask(Task):
    name = "echo"
    version = "1"
    capability = "understand"
    variants = ("plain",)
    metrics = (MetricSpec("acc", "higher", "0-1", "mean", field="correct", headline=True),)

    def load(self) -> list[Sample]:
        path = self.data_dir / "items.jsonl"
        if not path.exists():
            raise DataError(f"{path}: missing")
        return [Sample(r["id"], r) for r in map(json.loads, path.read_text().splitlines())]

    def request(self, sample: Sample, variant: Variant) -> Request:
        return Request(sample.id, "understand", sample.data["q"], options=variant.options)

    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        return {"correct": float(output["text"] == sample.data["a"])}

    def aggregate(self, scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
        return {"acc": mean_metric([s["correct"] for s in scores])}


class SeededModel:
    name = "seeded"
    capabilities = frozenset({"understand"})

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    def understand(self, requests: list[Request]) -> list[Result]:
        self.calls += 1
        if any(r.prompt == "FAIL" for r in requests):
            raise RuntimeError("scripted failure")
        time.sleep(self.delay * len(requests))
        return [Result(text=f"{r.prompt}:{r.seed % 1000}", trace=Trace(nfe=1)) for r in requests]


def register() -> None:
    if "echo" not in TASKS:
        TASKS.register("echo", EchoTask)


def write_items(data_dir: Path, n: int, fail: tuple[int, ...] = ()) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"s{i:03d}", "q": "FAIL" if i in fail else f"q{i}", "a": f"q{i}:0"} for i in range(n)]
    (data_dir / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def main(argv: list[str]) -> int:
    """python -m tests.harness.fake OUTPUT DATA DELAY [BATCH]"""
    from lavida_bench.app import execute
    from lavida_bench.config import load_config

    register()
    output, data, delay = argv[0], argv[1], float(argv[2])
    batch = argv[3] if len(argv) > 3 else "1"
    cfg = load_config(None, [f"output={output}", f"tasks.echo.data={data}", f"batch_size={batch}",
                             "model.kind=constant"])
    outcome = execute(cfg, model=SeededModel(delay), progress=False)
    return 1 if outcome.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
