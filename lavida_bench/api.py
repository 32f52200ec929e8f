"""The harness's shared vocabulary: the types every layer passes around and the errors it raises.

One module the way lm-evaluation-harness keeps `lm_eval/api/` (instance, metrics, model, task):
tasks, models, the runner, statistics, reports and the CLI all import these from here, so no
layer reaches sideways into another (stats into tasks, the model into the runner's protocol).
It imports nothing heavy (no torch, no PIL at run time), so the CLI can catch every error type
before any model loads.

- The capability protocol: what a task asks a model (`Request` with decoding `Options`) and
  what the model answers (`Result` with the `Trace` of what it cost, made of `Stage`s).
- Benchmark units: a `Sample` of a task, run in a `Variant`.
- Metrics: an aggregated `Metric` and the `MetricSpec` its task declares for it.
- Errors, one per kind of user-facing failure (each message names the file, record or key).
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

# ------------------------------------------------------------------------------------------------
# errors: each is exit code 2 at the CLI (bad input), never a traceback


class DataError(ValueError):
    """A benchmark file or record is malformed. The message names the file, record and field."""


class StoreError(RuntimeError):
    """A run folder cannot be read or written; the message names the file."""


class ConfigError(ValueError):
    """One or more configuration problems, each with its key path."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        if len(problems) == 1:  # the common case reads as one line naming the key
            super().__init__(f"{source}: {problems[0]}")
        else:
            super().__init__(f"{source}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems))


class UsageError(ValueError):
    """A command-line usage mistake (exit 2): e.g. a gate pattern that matches no metric."""


class CheckpointError(ValueError):
    """The checkpoint folder does not match the release layout; the message names what differs."""


# ------------------------------------------------------------------------------------------------
# the capability protocol

Capability = Literal["understand", "ground", "generate", "edit"]
CAPABILITIES: tuple[Capability, ...] = ("understand", "ground", "generate", "edit")


GROUNDING_OUTPUTS = ("last_pass", "committed")


@dataclass(frozen=True)
class Options:
    """Decoding options of one request. `None` means "the model's own default"."""

    steps: int | None = None  # decoding steps (image: 64 by default; grounding: 1 or more)
    max_new_tokens: int | None = None  # text answers
    # classifier-free guidance g as the release applies it, (1+g)*cond - g*uncond: 0 is none
    # (LaVida-O `predict_t2i_edit.py:421-611`); generation and editing
    cfg: float | None = None
    image_cfg: float | None = None  # editing only: the image guidance g_i (the release's guidance_scale_image)
    temperature: float | None = None
    policy: str | None = None  # unmasking policy name, e.g. "stratified" or "mmada"
    resolution: int | None = None  # output side in pixels (generation / editing)
    plan: bool = False  # planning: layout boxes before drawing
    reflect_rounds: int = 1  # max generation attempts; >1 enables self-reflection
    # Multi-step grounding's answer: "last_pass" (the release: the last pass's argmax at all four
    # slots) or "committed" (each slot keeps the token committed for it); model/sampling/grounding.py.
    grounding_output: str | None = None

    def __post_init__(self) -> None:
        if self.grounding_output not in (None, *GROUNDING_OUTPUTS):
            choices = ", ".join(GROUNDING_OUTPUTS)
            raise ValueError(f"grounding_output: {self.grounding_output!r} is not one of {choices}")

    def merged(self, **overrides: Any) -> "Options":
        """A copy with the non-None overrides applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class Request:
    """One sample for one capability.

    `images` are the inputs: the image to understand or ground in, or the source image to edit.
    `seed` is derived from the sample id by the runner, so outputs never depend on batch size,
    batch position, rank count or resume point.
    """

    id: str
    capability: Capability
    prompt: str
    images: list[Image.Image] = field(default_factory=list)
    options: Options = field(default_factory=Options)
    seed: int = 0
    caption: str | None = None  # what self-reflection judges the image against (default: prompt),
    # e.g. GenEval's caption without the release's "a realistic image, 4k. " prefix (LaVida-O eval_img/eval.py)


@dataclass
class Stage:
    """One stage of a request's work (e.g. plan, draw, judge), with its cost."""

    name: str
    nfe: int = 0  # network forward passes (a CFG-batched pass counts once)
    seconds: float = 0.0


@dataclass
class Trace:
    """What answering one request cost and how it was reached."""

    nfe: int = 0
    steps: int = 0
    latency_s: float = 0.0  # wall time for this request's share of the batch, device-synchronised
    peak_memory_bytes: int = 0
    stages: list[Stage] = field(default_factory=list)
    plan: str | None = None  # planning text (LOC tokens) when planning ran
    plan_boxes: list[list[float]] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # reflection: verdict per attempt
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Result:
    """A model's answer to one request. Which field is set depends on the capability."""

    text: str | None = None
    boxes: list[list[float]] | None = None  # xyxy, pixels of the input image
    image: Image.Image | None = None
    attempts: list[Image.Image] = field(default_factory=list)  # earlier reflection attempts
    trace: Trace = field(default_factory=Trace)


@runtime_checkable
class Model(Protocol):
    """A model the harness can run. Implement the capabilities you have; list them in
    `capabilities`. `describe()` goes into the run manifest (name, weights fingerprint, settings)."""

    name: str
    capabilities: frozenset[str]

    def describe(self) -> dict[str, Any]: ...


def call_capability(model: Model, requests: list[Request]) -> list[Result]:
    """Dispatch a homogeneous batch to the model's method for its capability."""
    capability = requests[0].capability
    if any(r.capability != capability for r in requests):
        raise ValueError("a batch must hold requests of one capability")
    if capability not in model.capabilities:
        raise ValueError(
            f"model {model.name!r} has no {capability!r} capability "
            f"(it has: {', '.join(sorted(model.capabilities))})"
        )
    results = getattr(model, capability)(requests)
    if len(results) != len(requests):
        raise RuntimeError(
            f"model {model.name!r} returned {len(results)} results for {len(requests)} requests"
        )
    return results


# ------------------------------------------------------------------------------------------------
# benchmark units


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


# ------------------------------------------------------------------------------------------------
# metrics

Direction = Literal["higher", "lower", "diagnostic"]
# Units a metric can be in, and the default compare tolerance in those units: half a point of a
# percentage (0.005 on 0-1, 0.5 on 0-100), 0.02 on ImgEdit's 1-5 judge scale, 0.5 FID.
SCALES: dict[str, float] = {"0-1": 0.005, "0-100": 0.5, "1-5": 0.02, "FID": 0.5, "seconds": 0.0}
MIN_N = 30  # below this a bootstrap interval (and any verdict on it) is not trustworthy


@dataclass(frozen=True)
class MetricSpec:
    """What one metric means, declared once by its task and carried into metrics.json, so that
    reports, compare and leaderboards never guess.

    `name` is exact or an fnmatch pattern with one `*` (e.g. "acc/*"). When `field` is set, the
    metric is `factor` x the mean of that per-sample score field over the samples it covers
    (those whose `where` field equals the group: the part of the name `*` matched, or the name
    itself), or with `macro` the unweighted mean over the values of that field of the group
    means. `field=None`: not a mean of per-sample values (FID, pooled categories), so it is
    compared unpaired. `direction` "diagnostic" marks rates and timings that are not quality:
    shown, never gated by default. `paper_factor` converts the stored value to the units the
    paper prints (RefCOCO/MMMU/ChartQA store 0-1 and print percent)."""

    name: str
    direction: Direction
    scale: str
    aggregation: str
    field: str | None = None
    where: tuple[str, ...] = ()
    macro: str | None = None
    factor: float = 1.0
    headline: bool = False
    paper_factor: float = 1.0
    min_n: int = MIN_N
    tolerance: float | None = None  # None: the scale's default (SCALES)

    def __post_init__(self) -> None:
        if self.direction not in ("higher", "lower", "diagnostic"):
            raise ValueError(f"metric {self.name!r}: direction must be higher, lower or diagnostic")
        if self.scale not in SCALES:
            raise ValueError(f"metric {self.name!r}: scale must be one of {list(SCALES)}")

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.name)

    def group(self, name: str) -> str:
        """The group value a metric name selects ("acc/refcoco/val" -> "refcoco/val")."""
        if "*" not in self.name:
            return name
        head, _, tail = self.name.partition("*")
        return name[len(head):len(name) - len(tail)]

    def facts(self, name: str) -> dict[str, Any]:
        """The spec as metrics.json stores it beside a value of metric `name`."""
        source = None
        if self.field is not None:
            source = {"field": self.field, "where": {f: self.group(name) for f in self.where} or None,
                      "macro": self.macro, "factor": self.factor}
        return {"direction": self.direction, "scale": self.scale, "aggregation": self.aggregation,
                "headline": self.headline, "paper_factor": self.paper_factor, "min_n": self.min_n,
                "tolerance": SCALES[self.scale] if self.tolerance is None else self.tolerance,
                "from": source}


def find_spec(specs: tuple[MetricSpec, ...], name: str, task: str = "?") -> MetricSpec:
    """The first declared spec matching `name`; a metric nobody declared is a programming error."""
    for spec in specs:
        if spec.matches(name):
            return spec
    raise KeyError(f"task {task}: metric {name!r} has no MetricSpec (declare it in the task's `metrics`)")


@dataclass(frozen=True)
class Metric:
    """An aggregated metric: value with a 95% bootstrap interval over `n` samples (NaN when
    there is nothing to aggregate)."""

    value: float
    ci_low: float
    ci_high: float
    n: int

    def to_json(self, spec: MetricSpec | None = None, name: str = "") -> dict[str, Any]:
        """Strict JSON: a NaN becomes null with a `reason`; with a spec, its facts ride along."""
        def num(x: float) -> float | None:
            return None if x is None or math.isnan(x) else float(x)

        out: dict[str, Any] = {"value": num(self.value), "ci_low": num(self.ci_low),
                               "ci_high": num(self.ci_high), "n": self.n}
        if out["value"] is None:
            out["reason"] = "no samples to aggregate" if self.n == 0 else f"undefined on {self.n} sample(s)"
        return {**out, **(spec.facts(name) if spec else {})}
