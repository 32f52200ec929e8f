"""The capability protocol: what a task asks a model, and what the model answers.

Every model the harness drives (Lavida-O, the reference baselines, speed baselines) implements the
capabilities it has over *batches* of `Request`s and returns one `Result` per request, each with
a `Trace` of what it cost. Tasks only build requests and read results, so a new model is usable
by every benchmark whose capability it implements.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from PIL import Image

Capability = Literal["understand", "ground", "generate", "edit"]
CAPABILITIES: tuple[Capability, ...] = ("understand", "ground", "generate", "edit")


@dataclass(frozen=True)
class Options:
    """Decoding options of one request. `None` means "the model's own default"."""

    steps: int | None = None  # decoding steps (image: 64 by default; grounding: 1 or more)
    max_new_tokens: int | None = None  # text answers
    cfg: float | None = None  # classifier-free guidance scale (generation / editing)
    temperature: float | None = None
    policy: str | None = None  # unmasking policy name, e.g. "stratified" or "mmada"
    resolution: int | None = None  # output side in pixels (generation / editing)
    plan: bool = False  # planning: layout boxes before drawing
    reflect_rounds: int = 1  # max generation attempts; >1 enables self-reflection

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
    # e.g. GenEval's caption without the release's "a realistic image, 4k. " prefix (benchmarks.md §0.1)


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
