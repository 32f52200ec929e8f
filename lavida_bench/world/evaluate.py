"""What a world checkpoint can do, measured on freshly rendered scenes with known truth.

Each measure uses the harness's public model API (`LavidaPipeline`) exactly as a benchmark run
would, and the world's strict detector as the judge of images:

- `vq_recall`: share of objects the detector recovers (kind, colour, box IoU >= 0.8) after an
  encode/decode round trip through the checkpoint's VQ - an upper bound for image generation;
- `grounding_p50`: one-step grounding precision at IoU 0.5 on referring expressions (the RefCOCO
  task's IoU and threshold, `tasks/refcoco.py`), and
  `grounding_by_objects` the same split by the number of objects in the scene;
- `grounding_swap`: whether grounding reads the expression at all: both objects of a
  two-object scene asked for by name, the same box given for both or each its own;
- `qa_accuracy`: exact-match accuracy on the world's questions (counts, colours, larger, choice);
- `judge_accuracy`: the model's own verdicts ("is correct" or not) against the truth;
- `geneval`: share of generated images that GenEval's rules (with the stand-in detector) pass;
- `edit_success`: share of edits whose result the detector finds done (`edits.outcome`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lavida_bench.api import Options
from lavida_bench.tasks.refcoco import IOU_THRESHOLD, box_iou
from lavida_bench.world.detect import detect
from lavida_bench.world.edits import outcome, random_edit
from lavida_bench.world.language import GENEVAL_TAGS, geneval_caption, questions, refer
from lavida_bench.world.micro import WORLD_SIDE, edit_options, image_options, micro_pipeline
from lavida_bench.world.scene import sample_scene
from lavida_bench.world.verdicts import PASS_PHRASE, judge_pair


def vq_recall(vq, rng: np.random.Generator, n: int) -> float:
    hits = total = 0
    for _ in range(n):
        scene = sample_scene(rng, WORLD_SIDE)
        image = vq.decode(vq.encode([scene.image()], WORLD_SIDE), vq.side(WORLD_SIDE))[0]
        seen = detect(image)
        total += len(scene.objects)
        hits += sum(any(s.kind == o.kind and s.color == o.color and box_iou(s.box, o.box) >= 0.8 for s in seen)
                    for o in scene.objects)
    return hits / total


def grounding_hits(pipe, rng: np.random.Generator, n: int, options: Options | None = None) -> dict[str, list[bool]]:
    """Hits at IoU 0.5 on `n` referring expressions, decoded with `options` (default: one step),
    grouped by how many objects the scene holds: with one object the expression needs no reading,
    with more it must pick the one it names (docs/benchmarks.md, "Where one-step grounding fails")."""
    from lavida_bench.api import Request

    options = options or Options(steps=1)

    requests, truth, objects = [], [], []
    while len(requests) < n:
        scene = sample_scene(rng, WORLD_SIDE)
        index = int(rng.integers(len(scene.objects)))
        expression = refer(scene, index)
        if expression:
            requests.append(Request(f"g{len(requests)}", "ground", expression, [scene.image()], options))
            truth.append(scene.objects[index].box)
            objects.append(len(scene.objects))
    hits: dict[str, list[bool]] = {}
    for r, box, count in zip(pipe.ground(requests), truth, objects):
        hit = bool(r.boxes) and box_iou(r.boxes[0], box) >= IOU_THRESHOLD
        hits.setdefault(f"{count} object{'s' * (count > 1)}", []).append(hit)
    return hits


def grounding_p50(pipe, rng: np.random.Generator, n: int, options: Options | None = None) -> float:
    """P@0.5 on `n` referring expressions, decoded with `options` (default: one step)."""
    return pooled(grounding_hits(pipe, rng, n, options))


def grounding_swap(pipe, rng: np.random.Generator, n: int) -> dict[str, dict[str, float]]:
    """On `n` scenes of two objects of different kinds, "the {kind}" of each, one step: the share
    of scenes where both boxes land on the object named (IoU >= 0.5), and where both answers are
    the same box. A grounder that finds objects but ignores the words scores 0 and 1; one-step
    P@0.5 alone cannot tell that from poor localisation (docs/benchmarks.md, "The expression is
    not read")."""
    from lavida_bench.api import Request

    scenes = []
    while len(scenes) < n:
        scene = sample_scene(rng, WORLD_SIDE)
        if len(scene.objects) == 2 and scene.objects[0].kind != scene.objects[1].kind:
            scenes.append(scene)
    requests = [Request(f"s{i}-{j}", "ground", refer(s, j), [s.image()], Options(steps=1))  # "the {kind}"
                for i, s in enumerate(scenes) for j in range(2)]
    boxes = [r.boxes[0] if r.boxes else None for r in pipe.ground(requests)]
    both, same = [], []
    for i, scene in enumerate(scenes):
        pair = boxes[2 * i: 2 * i + 2]
        both.append(all(b is not None and box_iou(b, o.box) >= IOU_THRESHOLD for b, o in zip(pair, scene.objects)))
        same.append(None not in pair and list(pair[0]) == list(pair[1]))
    return shares({"both_right": both, "same_box": same})


def qa_accuracy(pipe, rng: np.random.Generator, n: int) -> dict[str, float]:
    from lavida_bench.api import Request

    asked = []
    while len(asked) < n:
        scene = sample_scene(rng, WORLD_SIDE)
        for qa in questions(scene, rng)[: n - len(asked)]:
            asked.append((qa, Request(f"q{len(asked)}", "understand", qa.question, [scene.image()],
                                      Options(max_new_tokens=16))))
    answers = pipe.understand([r for _, r in asked])
    by_kind: dict[str, list[bool]] = {}
    for (qa, _), got in zip(asked, answers):
        by_kind.setdefault(qa.kind, []).append((got.text or "").strip().lower() == qa.answer.lower())
    return shares(by_kind)


def pooled(outcomes: dict[str, list[bool]]) -> float:
    """The share of True over every group together."""
    return float(np.mean([ok for group in outcomes.values() for ok in group]))


def shares(outcomes: dict[str, list[bool]]) -> dict[str, dict[str, float]]:
    """Per group: the share of True and how many it is over (a rate without its n means little)."""
    return {name: {"rate": float(np.mean(v)), "n": len(v)} for name, v in sorted(outcomes.items())}


def judge_accuracy(pipe, rng: np.random.Generator, n: int) -> dict[str, dict[str, float]]:
    """The self-reflection judge, decoded as the reflection loop decodes it (`ReflectionLoop.verdicts`),
    on `n` captions of every tag, each shown with its own scene or (every other one) a scene that
    fails it: how often its verdict is right, and how often it passes right and wrong images (a
    judge that passes everything is right half the time)."""
    pairs = [judge_pair(rng, str(rng.choice(GENEVAL_TAGS)), bool(i % 2), WORLD_SIDE) for i in range(n)]
    verdicts, _ = pipe.reflection.verdicts([p.caption.text for p in pairs], [p.shown.image() for p in pairs],
                                           list(range(n)))
    passed = [PASS_PHRASE in v for v in verdicts]
    return shares({"right": [ok == p.correct for ok, p in zip(passed, pairs)],
                   "passes_matching": [ok for ok, p in zip(passed, pairs) if p.correct],
                   "passes_wrong": [ok for ok, p in zip(passed, pairs) if not p.correct]})


def geneval_pass(pipe, backends, rng: np.random.Generator, n: int, plan: bool = False) -> dict[str, Any]:
    """GenEval's rules on `n` generated images, the prompts cycling through the six tags: the
    overall share passed and the share per tag."""
    from lavida_bench.api import Request
    from lavida_bench.tasks.geneval import judge_image

    captions = [geneval_caption(rng, GENEVAL_TAGS[i % len(GENEVAL_TAGS)], WORLD_SIDE) for i in range(n)]
    options = image_options(plan=plan)
    requests = [Request(f"t{i}", "generate", c.text, options=options, seed=i)
                for i, c in enumerate(captions)]
    results = pipe.generate(requests)
    by_tag: dict[str, list[bool]] = {}
    for r, c in zip(results, captions):
        by_tag.setdefault(c.meta["tag"], []).append(bool(judge_image(r.image, c.meta, backends)[0]))
    return {"overall": {"rate": pooled(by_tag), "n": n}, **shares(by_tag)}


def edit_success(pipe, rng: np.random.Generator, n: int, plan: bool = False) -> dict[str, dict[str, float]]:
    """Per edit operation: the share of edited images in which the detector finds the instruction
    done and every other object kept (the world's ImgEdit judge, `edits.outcome`); `plan`: the
    model plans each edit first."""
    from lavida_bench.api import Request

    edits = [random_edit(rng, WORLD_SIDE) for _ in range(n)]
    options = edit_options(plan=plan)
    results = pipe.edit([Request(f"e{i}", "edit", e.instruction, [e.source.image()], options=options, seed=i)
                         for i, e in enumerate(edits)])
    done: dict[str, list[bool]] = {}
    for e, r in zip(edits, results):
        seen = [s.shape() for s in detect(r.image)]
        done.setdefault(e.spec.op, []).append(outcome(e.spec, e.source.objects, seen).done)
    return {"overall": {"rate": pooled(done), "n": n}, **shares(done)}


def evaluate(folder: str, n: int = 24, seed: int = 1234) -> dict[str, Any]:
    from lavida_bench.backends import Backends, BackendsConfig

    pipe = micro_pipeline(folder)
    backends = Backends(BackendsConfig.standins())
    rng = np.random.default_rng(seed)
    recall = vq_recall(pipe.ck.vq, rng, n)  # the measures share one random stream, in this order
    hits = grounding_hits(pipe, rng, n)
    return {"n": n, "vq_recall": recall, "grounding_p50": pooled(hits), "grounding_by_objects": shares(hits),
            "qa_accuracy": qa_accuracy(pipe, rng, n), "judge_accuracy": judge_accuracy(pipe, rng, n),
            "geneval_plain": geneval_pass(pipe, backends, rng, n),
            "geneval_plan": geneval_pass(pipe, backends, rng, n, plan=True), "edit_success": edit_success(pipe, rng, n),
            "grounding_swap": grounding_swap(pipe, rng, n)}  # last: the measures above keep their draws
