"""Edits of a scene: an instruction, the source scene and the target scene it should become.

Four operations, each with one instruction template the stand-in judge can parse back:
"Remove the {phrase}.", "Add a {colour} {kind}.", "Make the {phrase} {colour}." and
"Replace the {phrase} with a {kind}." (`phrase` names one object uniquely, see language.py).
`outcome` checks an edited set of objects against the instruction and the objects before it -
the same check whether the objects come from the renderer's truth or from a detector.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from lavida_bench.backends.shapes import COLORS, SHAPES, Shape
from lavida_bench.tasks.refcoco import box_iou
from lavida_bench.world.language import article, edit_plan_text, phrase
from lavida_bench.world.scene import Scene, free_box, sample_scene, visible_colors

OPERATIONS = ("remove", "add", "recolor", "replace")
MATCH_IOU = 0.5  # an object "stays" if the edited image has one of its kind and colour at IoU >= this

_C, _K = "|".join(COLORS), "|".join(SHAPES)
_TARGET = rf"the (?:(?P<color>{_C}) )?(?P<kind>{_K})"
PATTERNS = {  # operation -> the phrasings read back (the first is the one `sample_edit` writes)
    "remove": [rf"\bremove {_TARGET}\b"],
    "add": [rf"\badd an? (?P<new_color>{_C}) (?P<new_kind>{_K})\b"],
    "recolor": [rf"\bmake {_TARGET} (?P<new_color>{_C})\b",
                rf"\bchange {_TARGET}'s colou?r to (?P<new_color>{_C})\b"],
    "replace": [rf"\breplace {_TARGET} with an? (?P<new_kind>{_K})\b"],
}
_COMPILED = [(op, re.compile(p, re.IGNORECASE)) for op, ps in PATTERNS.items() for p in ps]


@dataclass(frozen=True)
class EditSpec:
    """A parsed instruction: the operation, the object it targets and what it should become."""

    op: str
    kind: str | None = None
    color: str | None = None
    new_kind: str | None = None
    new_color: str | None = None

    def targets(self, objects: Sequence[Shape]) -> list[Shape]:
        return [o for o in objects if o.kind == self.kind and (self.color is None or o.color == self.color)]


@dataclass(frozen=True)
class Edit:
    instruction: str
    spec: EditSpec
    source: Scene
    target: Scene

    def plan(self) -> str:
        """The edit's planning answer: the objects it adds, changes or removes, where they are."""
        before, after = self.source.objects, self.target.objects
        changed = [o for o in after if o not in before] or [o for o in before if o not in after]
        return edit_plan_text(self.spec.op, changed, self.source.side)


def parse_instruction(text: str) -> EditSpec | None:
    """The first instruction template found in `text` (case-insensitive), or None."""
    found = [(m.start(), op, m) for op, pat in _COMPILED if (m := pat.search(text))]
    if not found:
        return None
    _, op, match = min(found, key=lambda t: t[0])
    groups = {k: (v.lower() if v else None) for k, v in match.groupdict().items()}
    return EditSpec(op, **groups)


def sample_edit(rng: np.random.Generator, scene: Scene, op: str | None = None) -> Edit | None:
    """A random edit of `scene` (None when the operation cannot apply, e.g. nothing nameable)."""
    op = op or str(rng.choice(OPERATIONS))
    colors = visible_colors(scene.background)
    if op == "add":
        box = free_box(rng, scene.side, [o.box for o in scene.objects])
        if box is None or len(scene.objects) >= 4:
            return None
        new = Shape(str(rng.choice(SHAPES)), str(rng.choice(colors)), box)
        spec = EditSpec("add", new_kind=new.kind, new_color=new.color)
        target = scene.with_objects([*scene.objects, new])
        return Edit(f"Add {article(f'{new.color} {new.kind}')}.", spec, scene, target)
    named = [(i, phrase(o, scene)) for i, o in enumerate(scene.objects)]
    named = [(i, p) for i, p in named if p]
    if not named:
        return None
    index, name = named[int(rng.integers(len(named)))]
    obj = scene.objects[index]
    spec = EditSpec(op, obj.kind, obj.color if " " in name else None)
    rest = [o for i, o in enumerate(scene.objects) if i != index]
    if op == "remove":
        return Edit(f"Remove the {name}.", spec, scene, scene.with_objects(rest))
    if op == "recolor":
        color = str(rng.choice([c for c in colors if c != obj.color]))
        changed = replace(obj, color=color)
        text, spec = f"Make the {name} {color}.", replace(spec, new_color=color)
    else:
        kind = str(rng.choice([k for k in SHAPES if k != obj.kind]))
        changed = replace(obj, kind=kind)
        text, spec = f"Replace the {name} with {article(kind)}.", replace(spec, new_kind=kind)
    objects = list(scene.objects)
    objects[index] = changed
    return Edit(text, spec, scene, scene.with_objects(objects))


def random_edit(rng: np.random.Generator, side: int) -> Edit:
    """A random edit of a random scene, both drawn again until the operation applies."""
    while True:
        edit = sample_edit(rng, sample_scene(rng, side))
        if edit is not None:
            return edit


@dataclass(frozen=True)
class Outcome:
    done: bool  # the instruction's change is there
    preserved: float  # fraction of the objects the edit should not touch that are unchanged
    extras: int  # objects in the edited image that nothing explains


def outcome(spec: EditSpec, before: Sequence[Shape], after: Sequence[Shape]) -> Outcome:
    """Compare the edited objects with what `spec` applied to `before` should give."""
    targets = spec.targets(before) if spec.op != "add" else []
    kept = [o for o in before if o not in targets]
    if spec.op != "add" and len(targets) != 1:
        return Outcome(False, _share_found(kept, list(after))[0], len(after))
    pool = list(after)
    preserved, pool = _share_found(kept, pool)
    if spec.op == "remove":
        done = not any(o.kind == targets[0].kind and o.color == targets[0].color
                       and box_iou(o.box, targets[0].box) >= MATCH_IOU for o in pool)
    elif spec.op == "add":
        hits = [o for o in pool if o.kind == spec.new_kind and o.color == spec.new_color]
        done = bool(hits)
        pool = [o for o in pool if o is not (hits[0] if hits else None)]
    else:
        want = replace(targets[0], color=spec.new_color or targets[0].color, kind=spec.new_kind or targets[0].kind)
        _, rest = _share_found([want], pool)
        done = len(rest) < len(pool)
        pool = rest
    return Outcome(done, preserved, len(pool))


def _share_found(wanted: Sequence[Shape], pool: list[Shape]) -> tuple[float, list[Shape]]:
    """(fraction of `wanted` found in `pool` by kind, colour and IoU, pool without them)."""
    rest = list(pool)
    hits = 0
    for w in wanted:
        match = next((o for o in rest if o.kind == w.kind and o.color == w.color
                      and box_iou(o.box, w.box) >= MATCH_IOU), None)
        if match is not None:
            hits += 1
            rest.remove(match)
    return (hits / len(wanted) if wanted else 1.0), rest
