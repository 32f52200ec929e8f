"""Judge pairs: a caption, an image that does or does not match it, and the judge's verdict.

The verdict is what the release's self-reflection loop reads: an image passes iff the judge's
text contains "is correct" (LaVida-O `eval_img/eval.py:63-80`). Failures carry a feedback
sentence in the style of the release's GenEval verifier (`eval_img/geneval_utils.py`,
`extract_reason_info`: "There is no {class} in image", "There should be {n} {class}, but only
{k} exists in image", "{class} should be {relation} the {target}, but it is ... the {target}"),
derived from GenEval's own clause check (`tasks/geneval.py` `evaluate`) on the scene's truth.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from lavida_bench.world.language import Caption, geneval_caption
from lavida_bench.world.scene import Scene

CORRECT = "The image is correct."
PASS_PHRASE = "is correct"


def truth_check(caption: Caption, shown: Scene) -> tuple[bool, str]:
    """GenEval's verdict (correct, reasons) for `shown`, with the truth as a perfect detector."""
    from lavida_bench.tasks.geneval import Found, evaluate

    objects: dict[str, list[Found]] = {}
    colour_of: dict[tuple[float, ...], str] = {}
    for o in shown.objects:
        objects.setdefault(o.kind, []).append(Found(1.0, tuple(map(float, o.box)), None))
        colour_of[tuple(map(float, o.box))] = o.color

    def colors_of(found, colors, classname):
        return [colour_of[tuple(f.box)] for f in found]

    return evaluate(objects, caption.meta, colors_of)


def feedback(reason: str, caption: Caption) -> str:
    """The first machine reason as one feedback sentence."""
    first = reason.splitlines()[0]
    target = next((c["class"] for c in caption.meta["include"] if "position" not in c), "object")
    if m := re.fullmatch(r"expected (\w+)>=(\d+), found (\d+)", first):
        name, want, got = m.groups()
        return (f"There is no {name} in image" if got == "0"
                else f"There should be {want} {name}, but only {got} exists in image")
    if m := re.fullmatch(r"expected (\w+) (\w+)>=(\d+), found .*", first):
        color, name, _ = m.groups()
        return f"The {name} should be {color}, but it is not"
    if m := re.fullmatch(r"expected (\w+) (left of|right of|above|below) target, found (.*) target", first):
        name, rel, seen = m.groups()
        actual = "not" if seen == "no relation to" else seen
        return f"{name} should be {rel} the {target}, but it is {actual} the {target}"
    if m := re.fullmatch(r"expected (\w+)<(\d+), found (\d+)", first):
        name, limit, got = m.groups()
        return f"There should be {int(limit) - 1} {name}, but {got} exist in image"
    raise ValueError(f"no feedback sentence for GenEval reason {first!r}")


def verdict(caption: Caption, shown: Scene) -> str:
    correct, reason = truth_check(caption, shown)
    return CORRECT if correct else feedback(reason, caption)


@dataclass(frozen=True)
class JudgePair:
    caption: Caption
    shown: Scene
    verdict: str

    @property
    def correct(self) -> bool:
        return PASS_PHRASE in self.verdict


def judge_pair(rng: np.random.Generator, tag: str, matching: bool, side: int = 64) -> JudgePair:
    """A caption with its own scene (`matching`) or with a scene of another caption of the same
    tag that fails it (a deliberately wrong image)."""
    caption = geneval_caption(rng, tag, side)
    if matching:
        return JudgePair(caption, caption.scene, CORRECT)
    for _ in range(100):
        shown = geneval_caption(rng, tag, side).scene
        text = verdict(caption, shown)
        if PASS_PHRASE not in text:
            return JudgePair(caption, shown, text)
    raise RuntimeError(f"no failing image for {caption.text!r} in 100 draws")
