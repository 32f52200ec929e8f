"""Scenes of the synthetic world: a few solid shapes on a plain background, with their truth.

A `Scene` is the ground truth (each object's kind, colour and box) and renders itself
deterministically with `lavida_bench.backends.shapes.draw_shapes`. `sample_scene` draws random
scenes from a numpy Generator: 1-4 objects, square boxes in the cells of a grid, never
overlapping and never touching (a gap of at least `GAP` of the side), each colour far from the
background so it stays visible.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from PIL import Image

from lavida_bench.backends.shapes import COLORS, SHAPES, Shape, draw_shapes

# Plain backgrounds: none is a palette colour, none is GenEval's #999 crop grey.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "light grey": (222, 222, 222),
    "dark grey": (60, 60, 60),
}
MIN_CONTRAST = 120.0  # RGB distance an object colour keeps from the background
# Objects sit in the cells of a GRID x GRID lattice of 16 px cells (at 64 px: 12 px boxes starting
# at 2, 18, 34 and 50), so each object lies inside one cell, which is one LLM position of the
# micro model's image (2x2 codes of 8 px) and one feature cell of its vision tower: drawing an
# object is one position's choice, and the world stays learnable on a CPU budget
# (docs/benchmarks.md, "The world moves to one object per position").
GRID = 4
PITCH, MARGIN, OBJECT = 16 / 64, 2 / 64, 12 / 64  # fractions of the side: cell pitch, first offset, object side
GAP = 0.06  # minimum free space between two objects, as a fraction of the image side
SIDES = (64, 128)  # the world's image sides, inclusive range
MAX_OBJECTS = 4


@dataclass(frozen=True)
class Scene:
    """Ground truth of one image: `objects` (drawn in order) on a named plain background."""

    side: int
    objects: tuple[Shape, ...]
    background: str = "white"

    def __post_init__(self) -> None:
        if not SIDES[0] <= self.side <= SIDES[1]:
            raise ValueError(f"Scene.side {self.side} is outside the world's {SIDES[0]}-{SIDES[1]} px")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"Scene.background {self.background!r} is not one of {', '.join(BACKGROUNDS)}")

    def image(self) -> Image.Image:
        return draw_shapes((self.side, self.side), list(self.objects), BACKGROUNDS[self.background])

    def with_objects(self, objects: Sequence[Shape]) -> "Scene":
        return replace(self, objects=tuple(objects))

    def of_kind(self, kind: str, color: str | None = None) -> list[Shape]:
        return [o for o in self.objects if o.kind == kind and (color is None or o.color == color)]


def visible_colors(background: str) -> list[str]:
    """Palette colours that stay far enough from `background` to be seen (and detected)."""
    bg = np.asarray(BACKGROUNDS[background], dtype=np.float64)
    return [c for c, rgb in COLORS.items() if np.linalg.norm(np.asarray(rgb) - bg) >= MIN_CONTRAST]


def boxes_apart(a: Sequence[float], b: Sequence[float], gap: float) -> bool:
    """True iff the boxes are separated by at least `gap` pixels along some axis."""
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def grid_boxes(side: int) -> list[tuple[float, float, float, float]]:
    """The GRID x GRID object boxes of a `side` px canvas, row by row."""
    size = round(OBJECT * side)
    starts = [round((MARGIN + PITCH * i) * side) for i in range(GRID)]
    return [(float(x), float(y), float(x + size), float(y + size)) for y in starts for x in starts]


def free_box(rng: np.random.Generator, side: int,
             taken: Sequence[Sequence[float]]) -> tuple[float, float, float, float] | None:
    """A random grid box that keeps GAP from every box in `taken` (None when none is free)."""
    gap = GAP * side
    free = [b for b in grid_boxes(side) if all(boxes_apart(b, t, gap) for t in taken)]
    return free[int(rng.integers(len(free)))] if free else None


def sample_scene(rng: np.random.Generator, side: int = 64, specs: Sequence[tuple[str | None, str | None]] | None = None,
                 background: str | None = None) -> Scene:
    """A random scene. `specs` fixes the objects as (kind or None, colour or None) pairs, None
    meaning random; without it, 1..MAX_OBJECTS random objects."""
    if specs is None:
        specs = [(None, None)] * int(rng.integers(1, MAX_OBJECTS + 1))
    wanted = {c for _, c in specs if c is not None}
    fitting = [b for b in BACKGROUNDS if wanted <= set(visible_colors(b))]
    if background is None and not fitting:
        raise ValueError(f"no background shows all of {sorted(wanted)}")
    bg = background or str(rng.choice(fitting))
    colors = visible_colors(bg)
    for _ in range(50):  # a hand-placed `taken` box can crowd the grid; start over
        objects: list[Shape] = []
        for kind, color in specs:
            box = free_box(rng, side, [o.box for o in objects])
            if box is None:
                break
            objects.append(Shape(kind or str(rng.choice(SHAPES)), color or str(rng.choice(colors)), box))
        else:
            return Scene(side, tuple(objects), bg)
    raise RuntimeError(f"cannot place {len(specs)} objects on a {side}px canvas")


def relations(a: Shape, b: Shape) -> set[str]:
    """GenEval's relations of `a` (subject) to `b` (target), from the official rule."""
    from lavida_bench.tasks.geneval import relative_position

    return relative_position(a.box, b.box)
