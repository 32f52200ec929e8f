"""Deterministic stand-in backends for the demo and the tests (all labelled `standin=True`).

They need no weights and understand exactly one world: the solid shapes of `shapes.py`. On
those images they are right (the detector finds each shape with its true box and mask, the
colour classifier names its colour, the VQA answers questions about kinds, colours, counts and
left/right/above/below correctly), so a synthetic benchmark with known truth scores
meaningfully. On any other image they still answer, deterministically, but the numbers mean
nothing, and every manifest and report says that a stand-in produced them.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from PIL import Image
from scipy import ndimage

from lavida_bench.backends.base import Backend
from lavida_bench.backends.detection import Detection, box_from_mask
from lavida_bench.backends.shapes import COLORS, SHAPES

if TYPE_CHECKING:
    from lavida_bench.backends import BackendsConfig

# GenEval pastes masked crops onto a flat #999 grey canvas (benchmarks.md §1.3); the stand-in
# colour classifier ignores pixels within GREY_TOLERANCE of it.
GREY = np.array([153, 153, 153])
GREY_TOLERANCE = 12

# Fill ratio (area / box area) of each ideal shape: square 1, circle pi/4, triangle 1/2.
FILL_RATIO = {"square": 1.0, "circle": float(np.pi / 4), "triangle": 0.5}
FIT_SLACK = 0.1  # rasterised shapes of side >= 6 px stay within 0.06 of the ideal ratio
PURITY_SCALE = 80.0  # RGB distance at which a pixel stops counting as its palette colour

_PALETTE_NAMES = list(COLORS)
_PALETTE = np.array([COLORS[n] for n in _PALETTE_NAMES], dtype=np.int32)


def nearest_color(rgb: np.ndarray, names: list[str]) -> str:
    """The name in `names` (all COLORS keys) whose RGB value is nearest to `rgb`."""
    unknown = [n for n in names if n not in COLORS]
    if unknown or not names:
        raise ValueError(f"stand-in colour classifier knows only {', '.join(COLORS)}; got {unknown or names}")
    dists = [float(((np.asarray(COLORS[n]) - rgb) ** 2).sum()) for n in names]
    return names[int(np.argmin(dists))]


def _border_color(arr: np.ndarray) -> np.ndarray:
    """Most common exact colour on the image border: the background of a shapes image."""
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    colors, counts = np.unique(border, axis=0, return_counts=True)
    return colors[int(np.argmax(counts))]


def find_shapes(image: Image.Image) -> list[tuple[Detection, str]]:
    """Connected components of each palette colour that differs from the background, as
    (detection labelled with its kind, colour name). Score = colour purity x shape fit."""
    arr = np.asarray(image.convert("RGB"), dtype=np.int32)
    height, width = arr.shape[:2]
    background = _border_color(arr)
    best = ((arr - background) ** 2).sum(-1)
    index = np.full((height, width), -1)
    for k, rgb in enumerate(_PALETTE):  # nearest palette colour; ties go to the background
        dist = ((arr - rgb) ** 2).sum(-1)
        closer = dist < best
        index[closer], best[closer] = k, dist[closer]
    purity = np.clip(1.0 - np.sqrt(best) / PURITY_SCALE, 0.0, 1.0)
    min_area = max(9, height * width // 2000)
    found: list[tuple[Detection, str]] = []
    for k in np.unique(index[index >= 0]):
        labels, _ = ndimage.label(index == k)
        for comp, region in enumerate(ndimage.find_objects(labels), start=1):
            if region is None:
                continue
            local = labels[region] == comp
            area = int(local.sum())
            if area < min_area:
                continue
            mask = np.zeros((height, width), dtype=bool)
            mask[region] = local
            box = box_from_mask(mask)
            ratio = area / ((box[2] - box[0]) * (box[3] - box[1]))
            kind = min(SHAPES, key=lambda s: abs(FILL_RATIO[s] - ratio))
            fit = float(np.clip(1.0 - max(0.0, abs(FILL_RATIO[kind] - ratio) - FIT_SLACK) / 0.2, 0.0, 1.0))
            score = float(purity[mask].mean()) * fit
            if score > 0:
                found.append((Detection(kind, score, box, mask), _PALETTE_NAMES[int(k)]))
    return found


class StandinDetector(Backend):
    """Finds the shapes of `shapes.py`; label = kind name ("circle", "square", "triangle")."""

    name: ClassVar[str] = "standin"
    standin: ClassVar[bool] = True
    class_names: ClassVar[tuple[str, ...]] = SHAPES

    def detect(self, image: Image.Image) -> list[Detection]:
        return [det for det, _ in find_shapes(image)]


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
        shapes = [(det.label, color, det.box) for det, color in find_shapes(image)]
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


# Aspect lines of ImgEdit rubrics look like "Prompt Compliance: <1-5>" (benchmarks.md §4.3);
# the stand-in answers with the first three such names it finds in the prompt, else these.
DEFAULT_ASPECTS = ("Prompt Compliance", "Visual Naturalness", "Physical & Detail Integrity")
_ASPECT_RE = re.compile(r"^\s*[-*]?\s*([A-Z][A-Za-z&/ ]{2,50}?)\s*:\s*(?:<|\[|\(|[1-5]\b|A number|score)",
                        re.MULTILINE)


class StandinJudge(Backend):
    """A well-formed three-score rubric reply from image statistics of (original, edited):
    compliance grows with the mean change, preservation shrinks with it, quality follows the
    edited image's contrast; the second and third never exceed the first (the rubric's rule)."""

    name: ClassVar[str] = "standin"
    standin: ClassVar[bool] = True

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> StandinJudge:
        return cls()

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, object]:
        return {"model": "standin"}

    def judge(self, key: str, prompt: str, images: list[Image.Image]) -> str:
        if not images:
            raise ValueError(f"judge item {key!r}: no images given")
        edited = _small(images[-1])
        change = float(np.abs(edited - _small(images[0])).mean() / 255.0) if len(images) > 1 else 0.5
        contrast = float(edited.std() / 128.0)
        first = _grade(change * 4)
        second = min(first, _grade(1.0 - change * 2))
        third = min(first, _grade(contrast * 2))
        names = []
        for name in _ASPECT_RE.findall(prompt):
            if name.strip() != "Brief reasoning" and name.strip() not in names:
                names.append(name.strip())
        names = (names + [n for n in DEFAULT_ASPECTS if n not in names])[:3]
        return (f"Brief reasoning: stand-in judge, mean change {change:.3f}, contrast {contrast:.3f}.\n"
                f"{names[0]}: {first}\n{names[1]}: {second}\n{names[2]}: {third}")


def _small(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)


def _grade(x: float) -> int:
    """[0, 1] -> integer score 1..5."""
    return 1 + round(4 * min(1.0, max(0.0, x)))
