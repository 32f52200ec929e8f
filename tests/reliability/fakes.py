"""Fault-injection doubles: slow phases (so a kill lands where a test wants it), a tiny image
task, and secret-leaking model/scorer. Built on tests/harness/fake.py's EchoTask/SeededModel.

Everything here is deterministic given the config seed: outputs depend on the per-sample seed
only, so an interrupted-and-resumed run must reproduce an uninterrupted one exactly.
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from lavida_bench import store as store_module
from lavida_bench.api import Metric, MetricSpec, Request, Result, Sample, Trace, Variant
from lavida_bench.config import RunConfig, load_config
from lavida_bench.stats import mean_metric
from lavida_bench.tasks import TASKS
from lavida_bench.tasks.base import ScoreContext
from tests.harness.fake import EchoTask, SeededModel, write_items
from tests.harness.fake import register as register_echo


class PaintTask(EchoTask):
    """A generation task: one image per sample; the score reads the stored PNG back."""

    name = "paint"
    capability = "generate"
    metrics = (MetricSpec("red", "higher", "0-1", "mean", field="red", headline=True),)

    def request(self, sample: Sample, variant: Variant) -> Request:
        return Request(sample.id, "generate", sample.data["q"], options=variant.options)

    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        red = ctx.load_image(output["image"]).getpixel((0, 0))[0]
        return {"red": red / 255.0}

    def aggregate(self, scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
        return {"red": mean_metric([s["red"] for s in scores])}


class PaintModel(SeededModel):
    """Paints a 16x16 image whose colour comes from the request seed; "FAIL" prompts raise."""

    capabilities = frozenset({"understand", "generate"})

    def generate(self, requests: list[Request]) -> list[Result]:
        self.calls += 1
        if any(r.prompt == "FAIL" for r in requests):
            raise RuntimeError("scripted failure")
        time.sleep(self.delay * len(requests))
        return [Result(image=Image.new("RGB", (16, 16), (r.seed % 256, (r.seed >> 8) % 256, 7)),
                       trace=Trace(nfe=1)) for r in requests]


def register() -> None:
    register_echo()
    if "paint" not in TASKS:
        TASKS.register("paint", PaintTask)


def make_config(out: Path, data: Mapping[str, Path], batch: int = 1, extra: tuple[str, ...] = ()) -> RunConfig:
    """A run over the given tasks (name -> data folder) with the constant-model settings."""
    register()
    return load_config(None, [f"output={out}", *(f"tasks.{t}.data={d}" for t, d in data.items()),
                              f"batch_size={batch}", "model.kind=constant", *extra])


def slow_down_scoring(delay: float) -> None:
    """Make every fake scorer take `delay` seconds (in a child process that will be killed)."""
    for cls in (EchoTask, PaintTask):
        original = cls.score

        def score(self: Any, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext,
                  _original: Any = original) -> dict[str, Any]:
            time.sleep(delay)
            return _original(self, sample, output, ctx)

        cls.score = score  # type: ignore[method-assign]


class SlowFile:
    """A raw file that writes each record in two halves with a pause between them, so a kill
    can land mid-record."""

    def __init__(self, raw: Any, delay: float):
        self._raw, self._delay, self._halfway = raw, delay, False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        if self._halfway or len(view) < 2:
            self._halfway = False
            return self._raw.write(view)
        n = self._raw.write(view[:len(view) // 2])
        self._halfway = True
        time.sleep(self._delay)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def slow_down_record_writes(delay: float) -> None:
    """Pause in the middle of every JSONL record write (in a child process that will be killed)."""
    original_init = store_module.JsonlWriter.__init__

    def init(self: Any, path: Path) -> None:
        original_init(self, path)
        self._file = SlowFile(self._file, delay)

    store_module.JsonlWriter.__init__ = init  # type: ignore[method-assign]


def slow_down_image_renames(delay: float) -> None:
    """Pause between writing an image under its temporary name and renaming it (child only:
    `os` is shared with the whole process)."""
    original_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if str(dst).endswith(".png"):
            time.sleep(delay)
        original_replace(src, dst)

    store_module.os.replace = replace  # type: ignore[attr-defined]


__all__ = ["EchoTask", "PaintModel", "PaintTask", "SeededModel", "make_config", "register",
           "slow_down_image_renames", "slow_down_record_writes", "slow_down_scoring", "write_items"]


def main(argv: list[str]) -> int:
    """python -m tests.reliability.fakes OUTPUT ECHO_DATA PAINT_DATA (used under torchrun)."""
    import sys

    from lavida_bench.app import execute

    out, echo, paint = map(Path, argv)
    outcome = execute(make_config(out, {"echo": echo, "paint": paint}), model=PaintModel(), progress=False)
    print(f"errors={outcome.errors}", file=sys.stderr)
    return 1 if outcome.errors else 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
