"""The task interface every benchmark adapter implements.

A task turns local benchmark files into `Sample`s (stable ids, JSON-serialisable data), builds
one `Request` per sample and variant, scores one stored output into per-sample values, and
aggregates per-sample values into metrics with confidence intervals. Generation and scoring are
separate stages, so `score` only ever sees what the runner stored.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

from PIL import Image

from lavida_bench.protocol import Capability, Options, Request


class DataError(ValueError):
    """A benchmark file or record is malformed. The message names the file, record and field."""


@dataclass(frozen=True)
class Sample:
    """One unit of work: `id` is stable across runs; `data` is JSON-serialisable."""

    id: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Variant:
    """A named way of running a task: the plain model, with planning, with reflection,
    with a given number of grounding steps..."""

    name: str
    options: Options = field(default_factory=Options)


@dataclass(frozen=True)
class Metric:
    """An aggregated metric: value with a 95% bootstrap interval over `n` samples."""

    value: float
    ci_low: float
    ci_high: float
    n: int

    def to_json(self) -> dict[str, float | int]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}


@dataclass
class ScoreContext:
    """What a scorer may use: the run folder (to read stored images) and evaluator backends."""

    run_dir: Path
    backends: Any = None  # lavida_bench.backends.Backends (None for tasks that need none)
    seed: int = 0

    def load_image(self, relpath: str) -> Image.Image:
        path = self.run_dir / relpath
        return read_image(path, f"{path}: stored image")


def read_image(source: str | Path | bytes, where: str) -> Image.Image:
    """Decode an image file (or bytes) to RGB, refusing truncated files even where another library
    (lmms-eval does, at import) has switched PIL to loading them silently."""
    import io

    from PIL import ImageFile

    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            return im.convert("RGB")
    except (OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{where}: cannot decode image ({err})") from err
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


class Task(ABC):
    """Base class of benchmark adapters. Subclasses set the class attributes and implement the
    four operations. `options` holds the task's own validated options (see `Options` dataclass
    of each task); `data_dir` is where the benchmark's local files are."""

    name: ClassVar[str]
    version: ClassVar[str]  # bump when prompts, parsing or scoring change
    capability: ClassVar[Capability]
    variants: ClassVar[tuple[str, ...]] = ("plain",)  # variants this task runs by default

    def __init__(self, data_dir: str | Path | None, options: Mapping[str, Any] | None = None):
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.options = dict(options or {})

    @abstractmethod
    def load(self) -> list[Sample]:
        """Read the benchmark's local files; raise `DataError` naming the file/record/field."""

    @abstractmethod
    def request(self, sample: Sample, variant: Variant) -> Request:
        """Build the model request for one sample (seed is filled in by the runner)."""

    @abstractmethod
    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        """Per-sample scores from one stored output (`{"text"|"boxes"|"image": ...}`)."""

    @abstractmethod
    def aggregate(self, scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
        """Metrics (name -> Metric) from the per-sample scores of one variant."""

    def describe(self) -> dict[str, Any]:
        """Goes into the manifest: identity and options of this task."""
        return {"name": self.name, "version": self.version, "capability": self.capability,
                "data_dir": str(self.data_dir) if self.data_dir else None, "options": self.options}
