"""GenEval: compositional text-to-image (553 prompts, 6 tasks), scored with the official rules.

Reproduces djghosh13/geneval `evaluation/evaluate_images.py` (aggregation: `summary_scores.py`): detections
above 0.3 (0.9 for every class of a `counting` prompt), at most 16 per class, best first, no NMS;
`include` clauses checked in order (count, then colour on masked grey-background crops, then
position against an earlier clause), `exclude` clauses over all kept detections; per-task mean
and the unweighted mean of the task means as the overall (`summary_scores.py`).

Lavida-O specifics (LaVida-O `eval_img/geneval.sh`, `eval_img/eval.py`): the prompt gets the release
prefix "a realistic image, 4k. " (the model adds its own micro-conditioning and chat template);
1 image per prompt as in the release, 4 as in GenEval's own protocol. With reflection the image
scored is the one the model finally returns; earlier attempts are scored too and kept beside it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from lavida_bench.api import DataError, MetricSpec, Request, Sample, Variant
from lavida_bench.tasks.base import ScoreContext, Task
from lavida_bench.tasks.files import require_file
from lavida_bench.tasks.generation import generation_request, image_samples
from lavida_bench.tasks.generation_fixtures import write_geneval_fixture

METADATA_FILE = "evaluation_metadata.jsonl"  # djghosh13/geneval prompts/evaluation_metadata.jsonl
RELEASE_PREFIX = "a realistic image, 4k. "  # LaVida-O eval_img/geneval.sh --prefix
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")  # evaluate_images.py
RELATIONS = ("left of", "right of", "above", "below")  # evaluate_images.py
THRESHOLD = 0.3  # evaluate_images.py --options threshold default
COUNTING_THRESHOLD = 0.9  # evaluate_images.py counting_threshold default, for every class
MAX_OBJECTS = 16  # evaluate_images.py max_objects default (per class)
POSITION_THRESHOLD = 0.1  # evaluate_images.py position_threshold default
DEAD_ZONE = 1e-3  # relative_position: below this on both axes there is no relation
CROP_BACKGROUND = (153, 153, 153)  # ImageCrops bgcolor "#999"


@dataclass(frozen=True)
class GenEvalOptions:
    images_per_prompt: int = 1  # Lavida-O release: 1; GenEval's own protocol: 4
    resolution: int | None = None  # output side in pixels; None = the model's default (1024)
    prefix: str = RELEASE_PREFIX  # "" for GenEval's prompt as-is

    def __post_init__(self) -> None:
        if self.images_per_prompt < 1:
            raise ValueError(f"option 'images_per_prompt' must be >= 1, got {self.images_per_prompt}")


@dataclass(frozen=True)
class Found:
    """One kept detection: box xyxy in pixels, instance mask [H, W] (or None)."""

    score: float
    box: tuple[float, float, float, float]
    mask: np.ndarray | None = None


class GenEval(Task):
    options_schema = GenEvalOptions
    version = "1"
    capability = "generate"
    variants = ("plain", "plan", "plan_reflect")
    evaluators = ("detector", "color")
    # summary_scores.py: per-task means and the unweighted mean of the task means as the overall.
    metrics = (
        MetricSpec("overall", "higher", "0-1", "macro over tag", field="correct", macro="tag", headline=True),
        MetricSpec("*", "higher", "0-1", "mean over the tag", field="correct", where=("tag",)),
    )

    def load(self) -> list[Sample]:
        if self.data_dir is None:
            raise DataError(f"task {self.name}: no data folder configured (tasks.{self.name}.data)")
        prompts = read_metadata(self.data_dir / METADATA_FILE)
        return [s for i, meta in enumerate(prompts)
                for s in image_samples(f"{i:05d}", {"index": i, "metadata": meta}, self.options.images_per_prompt)]

    def request(self, sample: Sample, variant: Variant) -> Request:
        caption = sample.data["metadata"]["prompt"]
        return generation_request(sample, "generate", self.options.prefix + caption, variant, self.options.resolution,
                                  caption=caption)

    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        meta = sample.data["metadata"]
        base = {"tag": meta["tag"], "prompt_index": sample.data["index"]}
        self.check_classes_known(meta, sample.data["index"], ctx.backends.detector)
        if not output.get("image"):
            return {**base, "correct": 0.0, "reason": "no image returned", "attempts_correct": []}
        correct, reason = judge_image(ctx.load_image(output["image"]), meta, ctx.backends)
        attempts = [judge_image(ctx.load_image(rel), meta, ctx.backends)[0]
                    for rel in output.get("attempts") or []]
        return {**base, "correct": float(correct), "reason": reason,
                "attempts_correct": [float(a) for a in attempts]}

    def check_classes_known(self, meta: Mapping[str, Any], index: int, detector: Any) -> None:
        """A prompt class the detector cannot output would silently score 0: make it an error."""
        known = getattr(detector, "class_names", None)
        if not known:
            return
        for clause in [*meta.get("include", []), *meta.get("exclude", [])]:
            if clause["class"] not in known:
                raise DataError(f"{self.data_dir / METADATA_FILE}: line {index + 1}: 'class' {clause['class']!r} "
                                f"is not a class the {detector.name} detector knows")

    @classmethod
    def make_fixture(cls, root: Path, seed: int = 0) -> Path:
        """Six shapes-world prompts, one per tag (seed unused: the scenes are fixed)."""
        return write_geneval_fixture(Path(root))


# ------------------------------------------------------------------------------------------------
# metadata


def read_metadata(path: Path) -> list[dict[str, Any]]:
    """Every line of evaluation_metadata.jsonl, checked against the official schema (as evaluate_images.py reads it)."""
    require_file(path, "GenEval evaluation_metadata.jsonl")
    out = []
    for n, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: line {n}: not UTF-8 text ({err})") from err
        if not line.strip():
            continue
        try:
            meta = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: line {n}: not valid JSON ({err})") from err
        check_metadata(meta, f"{path}: line {n}")
        out.append(meta)
    return out


def check_metadata(meta: Any, where: str) -> None:
    if not isinstance(meta, dict):
        raise DataError(f"{where}: expected a JSON object")
    for key in ("tag", "prompt"):
        if not isinstance(meta.get(key), str):
            raise DataError(f"{where}: field {key!r} must be a string")
    include = meta.get("include")
    if not isinstance(include, list) or not include:
        raise DataError(f"{where}: field 'include' must be a non-empty list")
    for i, clause in enumerate(include):
        check_clause(clause, f"{where}: include[{i}]")
        if "color" in clause and clause["color"] not in COLORS:
            raise DataError(f"{where}: include[{i}].color {clause['color']!r} is not one of {COLORS}")
        if "position" in clause:
            pos = clause["position"]
            if (not isinstance(pos, list) or len(pos) != 2 or pos[0] not in RELATIONS
                    or not isinstance(pos[1], int) or not 0 <= pos[1] < i):
                raise DataError(f"{where}: include[{i}].position must be [relation in {RELATIONS}, "
                                f"index of an earlier clause], got {pos!r}")
    for i, clause in enumerate(meta.get("exclude", [])):
        check_clause(clause, f"{where}: exclude[{i}]")


def check_clause(clause: Any, where: str) -> None:
    if not isinstance(clause, dict) or not isinstance(clause.get("class"), str):
        raise DataError(f"{where}: field 'class' must be a string")
    count = clause.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise DataError(f"{where}: field 'count' must be a positive integer, got {count!r}")


# ------------------------------------------------------------------------------------------------
# scoring (evaluate_images.py)


def judge_image(image: Image.Image, meta: Mapping[str, Any], backends: Any) -> tuple[bool, str]:
    """Detect, keep, then apply the clauses: (correct, reason)."""
    detections = backends.detector.detect(image)
    kept = keep_detections(detections, meta["tag"])

    def colors_of(objects: list[Found], colors: Sequence[str], classname: str) -> list[str]:
        # the class name feeds CLIP's templates "a photo of a {c} {classname}" (GenEval evaluate_images.py)
        return backends.color.classify([color_crop(image, o) for o in objects], list(colors), obj=classname)

    return evaluate(kept, meta, colors_of)


def keep_detections(detections: Sequence[Any], tag: str) -> dict[str, list[Found]]:
    """Per class, in the detector's order: best first, score strictly above the threshold, at
    most 16 (no NMS), exactly as djghosh13/geneval evaluation/evaluate_images.py lines 230-234.
    The scores are a float32 array there (mmdet's boxes), so the threshold is compared in float32
    (a score of exactly float32(0.3) is dropped), and ties follow `np.argsort(scores)[::-1]`
    (the later of two tied detections first)."""
    threshold = np.float32(COUNTING_THRESHOLD if tag == "counting" else THRESHOLD)
    by_class: dict[str, list[Any]] = {}
    for d in detections:
        by_class.setdefault(d.label, []).append(d)
    kept: dict[str, list[Found]] = {}
    for label, dets in by_class.items():
        scores = np.array([d.score for d in dets], dtype=np.float32)
        order = np.argsort(scores)[::-1]
        order = order[scores[order] > threshold][:MAX_OBJECTS]
        if len(order):
            kept[label] = [Found(float(dets[i].score), tuple(map(float, dets[i].box)), dets[i].mask) for i in order]
    return kept


def evaluate(objects: Mapping[str, list[Found]], meta: Mapping[str, Any], colors_of: Any) -> tuple[bool, str]:
    """Include clauses (AND, in order), then exclude clauses (OR); `colors_of(found, COLORS,
    classname)` names one colour per detection."""
    correct, reasons = True, []
    groups: list[list[Found] | None] = []  # per include clause: its detections, or None if it failed
    for clause in meta["include"]:
        name, count = clause["class"], clause["count"]
        found = objects.get(name, [])[:count]
        matched = len(found) >= count
        if not matched:
            reasons.append(f"expected {name}>={count}, found {len(found)}")
        elif "color" in clause:
            colors = colors_of(found, COLORS, name)
            if colors.count(clause["color"]) < count:
                matched = False
                reasons.append(f"expected {clause['color']} {name}>={count}, found "
                               f"{colors.count(clause['color'])} {clause['color']}")
        if matched and "position" in clause:
            relation, target = clause["position"]
            failure = position_failure(found, groups[target], relation, name)
            if failure:
                matched = False
                reasons.append(failure)
        correct = correct and matched
        groups.append(found if matched else None)
    for clause in meta.get("exclude", []):
        n = len(objects.get(clause["class"], []))
        if n >= clause["count"]:
            correct = False
            reasons.append(f"expected {clause['class']}<{clause['count']}, found {n}")
    return correct, "\n".join(reasons)


def position_failure(subjects: list[Found], targets: list[Found] | None, relation: str, name: str) -> str:
    """'' if every (subject, target) pair has `relation`, else the reason."""
    if targets is None:
        return f"no target for {name} to be {relation}"
    for subject in subjects:
        for target in targets:
            found = relative_position(subject.box, target.box)
            if relation not in found:
                seen = " and ".join(sorted(found)) or "no relation to"
                return f"expected {name} {relation} target, found {seen} target"
    return ""


def relative_position(box_a: Sequence[float], box_b: Sequence[float]) -> set[str]:
    """Relations of A (subject) to B (target), image y pointing down (GenEval evaluate_images.py)."""
    a, b = np.asarray(box_a, dtype=np.float64), np.asarray(box_b, dtype=np.float64)
    offset = (a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2
    size_sum = np.abs(a[2:] - a[:2]) + np.abs(b[2:] - b[:2])
    revised = np.maximum(np.abs(offset) - POSITION_THRESHOLD * size_sum, 0) * np.sign(offset)
    if np.all(np.abs(revised) < DEAD_ZONE):
        return set()
    dx, dy = revised / np.linalg.norm(offset)  # divided by the unshrunk offset, as the official code
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def color_crop(image: Image.Image, found: Found) -> Image.Image:
    """The object pasted through its mask onto flat #999 grey, cropped to its box (ImageCrops)."""
    if found.mask is not None:
        mask = np.asarray(found.mask, dtype=bool)
        if mask.shape != (image.height, image.width):
            raise DataError(f"detector mask shape {mask.shape} does not match image size "
                            f"{(image.height, image.width)}")
        grey = Image.new("RGB", image.size, CROP_BACKGROUND)
        image = Image.composite(image, grey, Image.fromarray(mask.astype(np.uint8) * 255))
    return image.crop(found.box)
