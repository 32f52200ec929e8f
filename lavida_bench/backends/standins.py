"""Deterministic stand-in backends for the demo and the tests (all labelled `standin=True`).

They need no weights and understand exactly one world, the synthetic one of
`lavida_bench.world` (solid circles, squares and triangles in GenEval's ten colours on plain
backgrounds), through its strict detector (`lavida_bench.world.detect`). On rendered scenes they
are right: the detector recovers each object's kind, colour, box and mask; the VQA answers
questions about kinds, colours, counts and left/right/above/below from those detections; the
judge checks an edit against what its instruction should produce. On anything else - noise, a
random-weight model's output, a photograph - the detector finds nothing, so the VQA answers
"no" and the judge reports the edit as not done: stand-ins never reward images that are not of
their world. Every manifest and report says that a stand-in produced the numbers.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from PIL import Image

from lavida_bench.backends.base import Backend
from lavida_bench.backends.detection import Detection
from lavida_bench.backends.shapes import COLORS, SHAPES, Shape
from lavida_bench.world.detect import detect, foreground_explained
from lavida_bench.world.edits import parse_instruction
from lavida_bench.world.edits import outcome as edit_outcome

if TYPE_CHECKING:
    from lavida_bench.backends import BackendsConfig

# GenEval pastes masked crops onto a flat #999 grey canvas (evaluate_images.py `ImageCrops`); the stand-in
# colour classifier ignores pixels within GREY_TOLERANCE of it.
GREY = np.array([153, 153, 153])
GREY_TOLERANCE = 12



def nearest_color(rgb: np.ndarray, names: list[str]) -> str:
    """The name in `names` (all COLORS keys) whose RGB value is nearest to `rgb`."""
    unknown = [n for n in names if n not in COLORS]
    if unknown or not names:
        raise ValueError(f"stand-in colour classifier knows only {', '.join(COLORS)}; got {unknown or names}")
    dists = [float(((np.asarray(COLORS[n]) - rgb) ** 2).sum()) for n in names]
    return names[int(np.argmin(dists))]


class StandinDetector(Backend):
    """The world's strict detector; label = kind name ("circle", "square", "triangle"),
    score = IoU of the region with the ideal shape (1.0 on rendered scenes)."""

    name: ClassVar[str] = "standin"
    standin: ClassVar[bool] = True
    class_names: ClassVar[tuple[str, ...]] = SHAPES

    def detect(self, image: Image.Image) -> list[Detection]:
        return [Detection(s.kind, s.score, s.box, s.mask) for s in detect(image)]


class StandinColor(Backend):
    """Nearest of the given colour names to the mean RGB of the crop's non-grey pixels."""

    name: ClassVar[str] = "standin"
    standin: ClassVar[bool] = True

    def classify(self, crops: list[Image.Image], colors: list[str], obj: str | None = None) -> list[str]:
        out = []
        for crop in crops:
            pixels = np.asarray(crop.convert("RGB"), dtype=np.float64).reshape(-1, 3)
            colored = (np.abs(pixels - GREY) > GREY_TOLERANCE).any(axis=1)
            chosen = pixels[colored] if colored.any() else pixels
            out.append(nearest_color(chosen.mean(axis=0), list(colors)))
        return out


_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10}
_COLOR_RE = "|".join(COLORS)
_OBJECT_RE = re.compile(rf"\b(?:(\d+|{'|'.join(_NUMBERS)})\s+)?(?:({_COLOR_RE})\s+)?"
                        rf"({'|'.join(SHAPES)})(?:s|es)?\b")
_RELATIONS = {"left of": (0, -1), "right of": (0, 1), "above": (1, -1), "below": (1, 1)}


class StandinVQA(Backend):
    """Answers "yes"/"no" about the shapes it detects.

    Rules, on the lower-cased question: object mentions are "[count] [colour] kind[s]"; a single
    mention without colour takes a lone colour word elsewhere ("Is the circle red?"). With a
    relation ("left of", "right of", "above", "below") and two mentions: yes iff some shape
    matching the first lies on that side (by centre) of some shape matching the second. Otherwise,
    with mentions: yes iff every mention is met (exactly `count` matching shapes, or at least one).
    With only colour words: yes iff a shape of each colour is present. Anything else: "no".
    """

    name: ClassVar[str] = "standin"
    standin: ClassVar[bool] = True

    def answer(self, image: Image.Image, question: str) -> str:
        shapes = [(s.kind, s.color, s.box) for s in detect(image)]
        return "yes" if _holds(question.lower(), shapes) else "no"


def _holds(q: str, shapes: list[tuple[str, str, tuple[float, float, float, float]]]) -> bool:
    mentions, used = [], []
    for match in _OBJECT_RE.finditer(q):
        count, color, kind = match.groups()
        number = None if not count else int(count) if count.isdigit() else _NUMBERS[count]
        mentions.append((number, color or None, kind))
        used.append(match.span())
    loose = [m.group(1) for m in re.finditer(rf"\b({_COLOR_RE})\b", q)
             if not any(a <= m.start() < b for a, b in used)]
    if len(mentions) == 1 and mentions[0][1] is None and len(loose) == 1:
        mentions[0] = (mentions[0][0], loose[0], mentions[0][2])  # "Is the circle red?"

    def matching(color: str | None, kind: str) -> list[tuple[float, float]]:
        return [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for k, c, b in shapes
                if k == kind and (color is None or c == color)]

    relation = next((r for r in _RELATIONS if r in q), None)
    if relation and len(mentions) >= 2:
        axis, sign = _RELATIONS[relation]
        subjects, targets = matching(*mentions[0][1:]), matching(*mentions[1][1:])
        return any(sign * (s[axis] - t[axis]) > 0 for s in subjects for t in targets)
    if mentions:
        return all((len(matching(c, k)) == n) if n is not None else bool(matching(c, k))
                   for n, c, k in mentions)
    return bool(loose) and all(any(c == color for _, c, _ in shapes) for color in loose)


STANDIN_GRID = 8  # images are summarised on an 8x8 RGB grid (192 numbers)
STANDIN_SEED = 20250919  # fixed seed of the random projection to 2048 dimensions


@lru_cache(maxsize=1)
def _projection() -> np.ndarray:
    dim = STANDIN_GRID * STANDIN_GRID * 3
    return np.random.default_rng(STANDIN_SEED).standard_normal((dim, 2048)) / np.sqrt(dim)


class StandinInception(Backend):
    """2048-d features from a fixed random projection of an 8x8 colour summary: similar images
    get similar features, so FID between shape sets behaves sensibly, but it is not Inception."""

    name: ClassVar[str] = "standin"
    standin: ClassVar[bool] = True

    def features(self, images: list[Image.Image]) -> np.ndarray:
        rows = []
        for image in images:  # one image at a time: features must not depend on batch size
            small = image.convert("RGB").resize((STANDIN_GRID, STANDIN_GRID), Image.Resampling.BOX)
            summary = np.asarray(small, dtype=np.float64).ravel() / 255.0 - 0.5
            rows.append(np.tanh(2.0 * (summary @ _projection())))
        return np.stack(rows) if rows else np.zeros((0, 2048))


# Aspect lines of ImgEdit rubrics look like "Prompt Compliance: <1-5>" (ImgEdit Benchmark/Basic/prompts.json);
# the stand-in answers with the first three such names it finds in the prompt, else these.
DEFAULT_ASPECTS = ("Prompt Compliance", "Visual Naturalness", "Physical & Detail Integrity")
_ASPECT_RE = re.compile(r"^\s*[-*]?\s*([A-Z][A-Za-z&/ ]{2,50}?)\s*:\s*(?:<|\[|\(|[1-5]\b|A number|score)",
                        re.MULTILINE)


class StandinJudge(Backend):
    """A well-formed three-score rubric reply that checks an edit of a world scene.

    It reads the edit instruction from the prompt (the world's templates, `world/edits.py`),
    detects the objects of the original (first image) and the edited (last image) and compares
    them with what the instruction should produce. First aspect (compliance): 5 if the change
    is there and the image is still the original scene (at least half the untouched objects
    kept, at least half the foreground explained), else 1. Second (preservation): grows with
    the share of untouched objects kept, halved by any unexplained extra object. Third
    (quality): the share of the edited image's foreground that the detector explains. The
    second and third never exceed the first (the rubric's rule). A prompt without a world
    instruction is an error (recorded per item), never a guessed score.
    """

    name: ClassVar[str] = "standin"
    standin: ClassVar[bool] = True

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> StandinJudge:
        return cls()

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, object]:
        return {"model": "standin"}

    def judge(self, key: str, prompt: str, images: list[Image.Image]) -> str:
        if len(images) < 2:
            raise ValueError(f"judge item {key!r}: the stand-in judge needs the original and the edited image")
        spec = parse_instruction(prompt)
        if spec is None:
            raise ValueError(f"judge item {key!r}: no edit instruction of the synthetic world in the prompt "
                             "(the stand-in judge reads 'Remove the ...', 'Add a ...', 'Make the ... <colour>', "
                             "'Change the ...'s color to ...', 'Replace the ... with a ...')")
        edited = detect(images[-1])
        result = edit_outcome(spec, _in_frame(detect(images[0]), images[0]), _in_frame(edited, images[-1]))
        explained = foreground_explained(images[-1], edited)
        # done = the change is there, in an image that is still the original scene (most of the
        # untouched objects kept, most of the foreground explained): noise never passes
        done = result.done and result.preserved >= 0.5 and explained >= 0.5
        first = 5 if done else 1
        second = min(first, _grade(result.preserved * (0.5 if result.extras else 1.0)))
        third = min(first, _grade(explained))
        names = _aspect_names(prompt)
        return (f"Brief reasoning: stand-in judge, {spec.op} {'done' if done else 'not done'}, "
                f"{result.preserved:.2f} of other objects kept, {result.extras} extra, "
                f"{explained:.2f} of the foreground explained.\n"
                f"{names[0]}: {first}\n{names[1]}: {second}\n{names[2]}: {third}")


FRAME = 1024.0  # boxes of both images are compared in a common 1024x1024 frame


def _in_frame(seen: list, image: Image.Image) -> list[Shape]:
    sx, sy = FRAME / image.width, FRAME / image.height
    return [Shape(s.kind, s.color, (s.box[0] * sx, s.box[1] * sy, s.box[2] * sx, s.box[3] * sy)) for s in seen]


def _aspect_names(prompt: str) -> list[str]:
    """The first three `Name: <1-5>` aspect names of the rubric, else the defaults."""
    names: list[str] = []
    for name in _ASPECT_RE.findall(prompt):
        if name.strip() != "Brief reasoning" and name.strip() not in names:
            names.append(name.strip())
    return (names + [n for n in DEFAULT_ASPECTS if n not in names])[:3]


def _grade(x: float) -> int:
    """[0, 1] -> integer score 1..5."""
    return 1 + round(4 * min(1.0, max(0.0, x)))
