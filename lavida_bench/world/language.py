"""What is said about a scene: GenEval captions, referring expressions, questions and layouts.

Every string is produced from a `Scene`'s truth, so its correct answer is known:

- captions follow GenEval's six prompt templates and carry GenEval metadata (`include` /
  `exclude` clauses, djghosh13/geneval `prompts/evaluation_metadata.jsonl`), so the official
  scoring rules apply to them unchanged;
- referring expressions name one object unambiguously ("the red circle left of the square");
- questions have short answers: a count (digits, for ChartQA-style relaxed accuracy), a colour,
  the larger of two objects, a multiple-choice letter, or yes/no (DPG-style);
- layouts are the planning answer: one `<box_p> phrase </box_p>` + LOC box per object, in the
  release's box format (LaVida-O `llava/eval/predict_grounding.py:104-105`; training target
  `Sure I should place the objects in the following manner {grounding_text}`, LaVida-O
  `llava/train/data/text_image.py:113-128`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from lavida_bench.backends.shapes import SHAPES, Shape
from lavida_bench.world.scene import BACKGROUNDS, Scene, relations, sample_scene, visible_colors

GENEVAL_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
RELATION_ORDER = ("left of", "right of", "above", "below")
PLAN_PREFIX = "Sure I should place the objects in the following manner "
# An edit's plan: the operation's verb, then the changed objects' boxes as in a layout plan (the
# release's training answers, LaVida-O `llava/train/data/interleaved.py:245-273`)
EDIT_PLAN = "Sure I should consider {verb} the objects in these locations : "
EDIT_PLAN_VERBS = {"add": "adding", "remove": "removing", "replace": "replacing", "recolor": "adjusting"}


def article(word: str) -> str:
    """`word` with its indefinite article ("a circle", "an orange square")."""
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


@dataclass(frozen=True)
class Caption:
    """A GenEval-style prompt true of `scene`, with its GenEval metadata record."""

    scene: Scene
    text: str
    meta: dict[str, Any]


def geneval_caption(rng: np.random.Generator, tag: str, side: int = 64) -> Caption:
    """A random scene drawn to make one GenEval template true, with its prompt and metadata."""
    if tag not in GENEVAL_TAGS:
        raise ValueError(f"unknown GenEval tag {tag!r} (one of {', '.join(GENEVAL_TAGS)})")
    k0, k1 = (str(k) for k in rng.permutation(SHAPES)[:2])
    background = str(rng.choice(list(BACKGROUNDS)))
    c0, c1 = (str(c) for c in rng.permutation(visible_colors(background))[:2])
    one = {"class": k0, "count": 1}
    if tag == "single_object":
        specs, text, include = [(k0, None)], f"a photo of {article(k0)}", [one]
    elif tag == "two_object":
        specs, text = [(k0, None), (k1, None)], f"a photo of {article(k0)} and {article(k1)}"
        include = [one, {"class": k1, "count": 1}]
    elif tag == "counting":
        n = int(rng.integers(2, 5))
        scene = sample_scene(rng, side, [(k0, None)] * n, background)
        meta = {"tag": tag, "include": [{"class": k0, "count": n}], "exclude": [{"class": k0, "count": n + 1}],
                "prompt": f"a photo of {NUMBER_WORDS[n]} {k0}s"}
        return Caption(scene, meta["prompt"], meta)
    elif tag == "colors":
        specs, text, include = [(k0, c0)], f"a photo of {article(f'{c0} {k0}')}", [{**one, "color": c0}]
    elif tag == "color_attr":
        specs, text = [(k0, c0), (k1, c1)], f"a photo of {article(f'{c0} {k0}')} and {article(f'{c1} {k1}')}"
        include = [{**one, "color": c0}, {"class": k1, "count": 1, "color": c1}]
    else:
        return _position_caption(rng, k0, k1, side, background)
    scene = sample_scene(rng, side, specs, background)
    return Caption(scene, text, {"tag": tag, "include": include, "prompt": text})


def _position_caption(rng: np.random.Generator, subject: str, target: str, side: int, background: str) -> Caption:
    """'a photo of a {subject} {relation} a {target}': the target is clause 0 (GenEval's order)."""
    for _ in range(100):
        scene = sample_scene(rng, side, [(subject, None), (target, None)], background)
        found = [r for r in RELATION_ORDER if r in relations(*scene.objects)]
        if found:
            rel = str(rng.choice(found))
            text = f"a photo of {article(subject)} {rel} {article(target)}"
            include = [{"class": target, "count": 1}, {"class": subject, "count": 1, "position": [rel, 0]}]
            return Caption(scene, text, {"tag": "position", "include": include, "prompt": text})
    raise RuntimeError("no scene with a GenEval relation in 100 draws")


def phrase(obj: Shape, scene: Scene) -> str | None:
    """The shortest of "kind" / "colour kind" that fits `obj` and no other object, or None."""
    if len(scene.of_kind(obj.kind)) == 1:
        return obj.kind
    if len(scene.of_kind(obj.kind, obj.color)) == 1:
        return f"{obj.color} {obj.kind}"
    return None


def refer(scene: Scene, index: int) -> str | None:
    """A referring expression that picks out exactly `scene.objects[index]`, or None.

    Tried in order: "the circle", "the red circle", "the red circle left of the square"
    (a relation to a uniquely named object that no other red circle has)."""
    obj = scene.objects[index]
    own = phrase(obj, scene)
    if own:
        return f"the {own}"
    same = scene.of_kind(obj.kind, obj.color)
    for other in scene.objects:
        name = phrase(other, scene)
        if other in same or name is None:
            continue
        for rel in RELATION_ORDER:
            if [s for s in same if rel in relations(s, other)] == [obj]:
                return f"the {obj.color} {obj.kind} {rel} the {name}"
    return None


@dataclass(frozen=True)
class QA:
    question: str
    answer: str
    kind: str  # count | color | larger | choice | exists


def questions(scene: Scene, rng: np.random.Generator) -> list[QA]:
    """Questions about `scene` with their exact short answers (one of each kind that applies)."""
    kind = str(rng.choice(SHAPES))
    out = [QA(f"How many {kind}s are there?", str(len(scene.of_kind(kind))), "count")]
    unique = [o for o in scene.objects if len(scene.of_kind(o.kind)) == 1]
    if unique:
        obj = unique[int(rng.integers(len(unique)))]
        out.append(QA(f"What color is the {obj.kind}?", obj.color, "color"))
    if len(unique) >= 2:
        a, b = (unique[int(i)] for i in rng.choice(len(unique), 2, replace=False))
        area = {o: (o.box[2] - o.box[0]) * (o.box[3] - o.box[1]) for o in (a, b)}
        if max(area.values()) >= 1.3 * min(area.values()):  # only clear differences are asked
            bigger = a if area[a] > area[b] else b
            out.append(QA(f"Which is larger, the {a.kind} or the {b.kind}?", bigger.kind, "larger"))
    n = len(scene.objects)
    options = "\n".join(f"{letter}. {v}" for letter, v in zip("ABCD", range(1, 5)))
    out.append(QA(f"How many shapes are there?\n{options}\nAnswer with the option's letter from the given "
                  "choices directly.", "ABCD"[n - 1], "choice"))
    color = str(rng.choice(visible_colors(scene.background)))
    present = bool(scene.of_kind(kind, color))
    out.append(QA(f"Is there {article(f'{color} {kind}')}?", "yes" if present else "no", "exists"))
    return out


def boxed_objects(objects: Sequence[Shape], side: int) -> str:
    """Each object as `<box_p> phrase </box_p>` + its LOC box (0..1024), comma-separated."""
    from lavida_bench.model.sampling.grounding import quantize_box
    from lavida_bench.model.tokens import loc_string

    return ", ".join(f"<box_p> {o.color} {o.kind} </box_p>{loc_string(quantize_box(o.box, side, side))}"
                     for o in objects)


def layout_text(scene: Scene) -> str:
    """The planning answer: every object of the scene, boxed."""
    return PLAN_PREFIX + boxed_objects(scene.objects, scene.side)


def edit_plan_text(op: str, changed: Sequence[Shape], side: int) -> str:
    """An edit's planning answer: what the operation does, and where (the changed objects, boxed)."""
    return EDIT_PLAN.format(verb=EDIT_PLAN_VERBS[op]) + boxed_objects(changed, side)


def grounding_answer(scene: Scene, index: int) -> str:
    """The grounding target: the object's box as a LOC string (the RefCOCO training answer)."""
    from lavida_bench.model.sampling.grounding import quantize_box
    from lavida_bench.model.tokens import loc_string

    return loc_string(quantize_box(scene.objects[index].box, scene.side, scene.side))
