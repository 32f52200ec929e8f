"""The task interface every benchmark adapter implements.

A task turns local benchmark files into `Sample`s (stable ids, JSON-serialisable data), builds
one `Request` per sample and variant, scores one stored output into per-sample values, and
aggregates per-sample values into metrics with confidence intervals. Generation and scoring are
separate stages, so `score` only ever sees what the runner stored.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

from PIL import Image

from lavida_bench.api import Capability, DataError, Metric, MetricSpec, Request, Sample, Variant, find_spec
from lavida_bench.validate import parse_options


def aggregate_declared(specs: tuple[MetricSpec, ...], scores: list[Mapping[str, Any]],
                       skip: tuple[str, ...] = ()) -> dict[str, Metric]:
    """Every declared per-sample metric (spec with a `field`), computed from its spec alone:
    one place says what a metric is, and paired comparisons use the same definition."""
    from lavida_bench.stats import macro_metric, mean_metric

    metrics: dict[str, Metric] = {}
    for spec in specs:
        if spec.field is None or spec.name in skip:
            continue
        for name in spec_names(spec, scores):
            rows = [s for s in scores if not spec.where or any(s.get(f) == spec.group(name) for f in spec.where)]
            rows = [s for s in rows if is_number(s.get(spec.field))]
            if spec.macro:
                groups: dict[str, list[float]] = {}
                for s in rows:
                    groups.setdefault(str(s[spec.macro]), []).append(spec.factor * s[spec.field])
                metrics[name] = macro_metric(groups)
            else:
                metrics[name] = mean_metric([spec.factor * s[spec.field] for s in rows])
    return metrics


def spec_names(spec: MetricSpec, scores: list[Mapping[str, Any]]) -> list[str]:
    """Metric names a spec yields on these scores: itself, or one per group value seen."""
    if "*" not in spec.name:
        return [spec.name]
    head, _, tail = spec.name.partition("*")
    values = [s.get(f) for s in scores for f in spec.where if isinstance(s.get(f), str)]
    return [f"{head}{v}{tail}" for v in dict.fromkeys(values)]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class ScoreContext:
    """What a scorer may use: the run folder (to read stored images) and evaluator backends."""

    run_dir: Path
    backends: Any = None  # lavida_bench.backends.Backends (None for tasks that need none)
    seed: int = 0

    def load_image(self, relpath: str) -> Image.Image:
        path = self.run_dir / relpath
        return read_image(path, f"{path}: stored image")


# Largest input image accepted, in pixels (width x height), checked from the header before any
# decoding: 40 MP is far above the images of every supported benchmark and every generated
# image, and bounds the RGB copy of one image at 120 MB (a 9400x9400 PNG, 88 MP, took 2.2 GB of
# memory on the tiny model). PIL's own guard (Image.MAX_IMAGE_PIXELS, 89 MP) only warns below
# twice that. docs/reliability.md, "Bad data".
MAX_INPUT_PIXELS = 40_000_000


def read_image(source: str | Path | bytes, where: str) -> Image.Image:
    """Decode an image file (or bytes) to RGB, refusing images over MAX_INPUT_PIXELS before
    decoding them, and truncated files even where another library (lmms-eval does, at import)
    has switched PIL to loading them silently."""
    import io

    from PIL import ImageFile

    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            if im.width * im.height > MAX_INPUT_PIXELS:
                raise DataError(f"{where}: image of {im.width}x{im.height} pixels is over the limit of "
                                f"{MAX_INPUT_PIXELS:,} pixels (tasks.base.MAX_INPUT_PIXELS); downscale it")
            return im.convert("RGB")
    except DataError:
        raise
    except Image.DecompressionBombError as err:  # PIL's own refusal, past twice its limit
        raise DataError(f"{where}: image is over the limit of {MAX_INPUT_PIXELS:,} pixels ({err})") from err
    except (OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{where}: cannot decode image ({err})") from err
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


@dataclass(frozen=True)
class NoOptions:
    """The options of a task that has none: any key given is an error."""


class Task(ABC):
    """Base class of benchmark adapters. Subclasses set the class attributes and implement the
    four operations. `options` holds the task's own options, validated into its
    `options_schema` dataclass; `data_dir` is where the benchmark's local files are."""

    name: ClassVar[str]  # its module's name unless the class sets one (see __init_subclass__)
    options_schema: ClassVar[type] = NoOptions  # dataclass its `options` are validated into
    version: ClassVar[str]  # bump when prompts, parsing or scoring change
    capability: ClassVar[Capability]
    variants: ClassVar[tuple[str, ...]] = ("plain",)  # variants this task runs by default
    metrics: ClassVar[tuple[MetricSpec, ...]]  # what every metric it reports means (first match wins)
    evaluators: ClassVar[tuple[str, ...]] = ()  # evaluator backend kinds its scorer needs

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A task is registered under its module's name (tasks/geneval.py -> "geneval"), so the
        name is written once; a class defined elsewhere (a test, a plugin) sets `name` itself."""
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__module__.rpartition(".")[2]

    def __init__(self, data_dir: str | Path | None, options: Mapping[str, Any] | None = None):
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.given_options = dict(options or {})  # as configured: what the manifest records
        self.options = parse_options(self.options_schema, self.given_options, self.name)

    @abstractmethod
    def load(self) -> list[Sample]:
        """Read the benchmark's local files; raise `DataError` naming the file/record/field."""

    @abstractmethod
    def request(self, sample: Sample, variant: Variant) -> Request:
        """Build the model request for one sample (seed is filled in by the runner)."""

    @abstractmethod
    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        """Per-sample scores from one stored output (`{"text"|"boxes"|"image": ...}`)."""

    def aggregate(self, scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
        """Metrics (name -> Metric) from the per-sample scores of one variant: by default every
        declared per-sample metric; tasks add the ones that are not per-sample means."""
        return aggregate_declared(self.metrics, scores)

    @classmethod
    def spec(cls, name: str) -> MetricSpec:
        return find_spec(cls.metrics, name, cls.name)

    def paper_deviations(self, samples: list[Sample]) -> list[str]:
        """How this task's settings and loaded data depart from the protocol behind the paper's
        numbers (empty: none known). Shown in the run's trust facts."""
        return []

    def target(self, sample: Sample) -> Any:
        """The reference answer, stored in each output record beside the prompt and the raw output
        (as lmms-eval's `--log_samples` does); None where the benchmark has none (image prompts)."""
        return None

    def describe(self) -> dict[str, Any]:
        """Goes into the manifest: identity and options of this task."""
        return {"name": self.name, "version": self.version, "capability": self.capability,
                "data_dir": str(self.data_dir) if self.data_dir else None, "options": self.given_options}
