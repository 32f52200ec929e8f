"""RefCOCO / RefCOCO+ / RefCOCOg referring-expression grounding: Precision@0.5 per split.

Protocol (LaVida-O `llava/eval/predict_grounding.py`): one sample per referring expression; the model
gets the image and the expression (the model wraps it in the release's grounding prompt,
`predict_grounding.py:57-101`, and
decodes the LOC tokens back into pixels of the input image); a prediction is a hit when its IoU
with the ground-truth box is >= 0.5. Scores are reported per split; the paper never averages
across splits, so the pooled `acc` is a convenience, not a paper number.

Data layout under the task's data dir (one folder per dataset, as an lmms-lab snapshot):

    RefCOCO/data/{val,testA,testB,test}-*.parquet   lmms-lab/RefCOCO rows: one object per row,
    RefCOCOplus/data/{val,testA,testB}-*.parquet    `answer` = its expressions, `bbox` = COCO
    RefCOCOg/data/{val,test}-*.parquet              [x, y, w, h] in pixels, `image` = HF image
    <Dataset>/{split}.jsonl                         InternVL-style lines: `image` (path), `sent`,
                                                    `bbox` [x1, y1, x2, y2] in pixels

IoU is computed in pixels exactly as pycocotools' `maskUtils.iou` does for boxes (no +1, no
epsilon; tested against it). Lavida-O's own script adds 1e-6 to the union, which turns an IoU of
exactly 0.5 into a miss; this only matters for boxes that land exactly on the boundary.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from lavida_bench.api import DataError, MetricSpec, Request, Sample, Variant
from lavida_bench.safety import resolve_inside
from lavida_bench.tasks.base import ScoreContext, Task, read_image
from lavida_bench.tasks.files import (
    ParquetImages,
    image_ref,
    read_jsonl,
    read_parquet,
    relative,
    split_files,
)
from lavida_bench.tasks.understanding_fixtures import make_refcoco_fixture

IOU_THRESHOLD = 0.5  # Precision@0.5 (LaVida-O llava/eval/predict_grounding.py:145-195)
DEFAULT_STEPS = 1  # the official RefCOCO eval runs steps=1 (predict_grounding.py:307)

# dataset key -> (folder name of the lmms-lab snapshot, its splits); HF lmms-lab/RefCOCO, RefCOCOplus, RefCOCOg
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "refcoco": ("RefCOCO", ("val", "testA", "testB", "test")),
    "refcoco+": ("RefCOCOplus", ("val", "testA", "testB")),
    "refcocog": ("RefCOCOg", ("val", "test")),
}
# The splits of the paper's table (arXiv 2509.19244, RefCOCO/+/g Precision@0.5); lmms-lab's extra RefCOCO `test` is only
# read when named explicitly.
PAPER_SPLITS: tuple[str, ...] = ("refcoco/val", "refcoco/testA", "refcoco/testB", "refcoco+/val",
                                 "refcoco+/testA", "refcoco+/testB", "refcocog/val", "refcocog/test")
KNOWN_SPLITS = tuple(f"{d}/{s}" for d, (_, splits) in DATASETS.items() for s in splits)
PARQUET_FIELDS = ["question_id", "answer", "bbox"]


@dataclass(frozen=True)
class RefCOCOOptions:
    """`splits`: e.g. ["refcoco/val", "refcocog/test"]; None = every paper split, each required.
    `image_root`: base folder for the JSONL form's image paths (default: the JSONL's folder)."""

    splits: list[str] | None = None
    image_root: str | None = None

    def __post_init__(self) -> None:
        for split in self.splits or []:
            if split not in KNOWN_SPLITS:
                raise ValueError(f"unknown split {split!r} (known: {', '.join(KNOWN_SPLITS)})")


def xywh_to_xyxy(box: Sequence[float]) -> list[float]:
    """COCO [x, y, w, h] -> [x1, y1, x2, y2] (the IoU in predict_grounding.py:145-195 is on xyxy boxes)."""
    x, y, w, h = box
    return [float(x), float(y), float(x + w), float(y + h)]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two xyxy boxes in pixels; a box with negative extent has zero area."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def first_box(boxes: Any) -> list[float] | None:
    """The predicted box from a stored output, or None when it is missing or malformed."""
    if not isinstance(boxes, list) or not boxes or not isinstance(boxes[0], (list, tuple)):
        return None
    box = boxes[0]
    if len(box) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        return None
    return [float(v) for v in box] if all(math.isfinite(v) for v in box) else None


def check_box(box: Any, where: str) -> list[float]:
    if (not isinstance(box, (list, tuple)) or len(box) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)):
        raise DataError(f"{where}, field 'bbox': expected 4 finite numbers, got {box!r}")
    return [float(v) for v in box]


class RefCOCO(Task):
    options_schema = RefCOCOOptions
    version = "1"
    capability = "ground"
    variants = ("steps1", "steps4")
    # Precision@0.5 per split is the paper's number (in percent); the pooled `acc` is a convenience
    # headline for leaderboards of one run's splits, never compared with a paper number.
    metrics = (
        MetricSpec("acc", "higher", "0-1", "mean over all splits", field="correct", headline=True,
                   paper_factor=100),
        MetricSpec("acc/*", "higher", "0-1", "mean over the split", field="correct", where=("split",),
                   paper_factor=100),
        MetricSpec("iou", "higher", "0-1", "mean", field="iou"),
        MetricSpec("parse_failure_rate", "lower", "0-1", "mean", field="parse_failure"),
        MetricSpec("latency_s", "diagnostic", "seconds", "mean", field="latency_s"),
    )

    def __init__(self, data_dir: str | Path | None, options: Mapping[str, Any] | None = None):
        super().__init__(data_dir, options)
        self._images = ParquetImages()

    # -- loading -----------------------------------------------------------------------------

    def load(self) -> list[Sample]:
        if self.data_dir is None or not self.data_dir.is_dir():
            raise DataError(f"{self.name}: data dir {self.data_dir} does not exist (expected folders "
                            f"{', '.join(f for f, _ in DATASETS.values())} with parquet or JSONL splits)")
        wanted = self.options.splits or list(PAPER_SPLITS)
        files = {group: self.split_files(group) for group in wanted}
        missing = [group for group, found in files.items() if not found]
        if missing:  # a paper split silently left out would change the table's meaning
            expected = "; ".join(f"{self.folder(g)}/**/{g.split('/')[1]}-*.parquet or "
                                 f"{self.folder(g)}/{g.split('/')[1]}.jsonl" for g in missing)
            present = [g for g in wanted if files[g]]
            hint = "" if self.options.splits or not present else (
                f"; to run only the splits present, select them: tasks.{self.name}.options.splits=[{','.join(present)}]")
            raise DataError(f"{self.name}: split(s) {', '.join(missing)} not found under {self.data_dir} "
                            f"(expected {expected}){hint}")
        return [sample for group in wanted for sample in self.load_split(group, files[group])]

    def folder(self, group: str) -> Path:
        return self.data_dir / DATASETS[group.split("/")[0]][0]

    def split_files(self, group: str) -> list[Path]:
        """The split's parquet shards, or its JSONL file; both at once is ambiguous."""
        folder, split = self.folder(group), group.split("/")[1]
        return split_files(folder, split, f"{self.name} split {group!r}") if folder.is_dir() else []

    def load_split(self, group: str, files: list[Path]) -> list[Sample]:
        dataset, split = group.split("/")
        out: list[Sample] = []
        for path in files:
            entries = (self.parquet_entries(path) if path.suffix == ".parquet"
                       else self.jsonl_entries(path))
            for entry in entries:
                data = {"dataset": dataset, "split": split, "group": group, **entry}
                out.append(Sample(f"{group}/{len(out):05d}", data))
        return out

    def parquet_entries(self, path: Path) -> list[dict[str, Any]]:
        """lmms-lab rows -> one entry per expression (lmms-eval "explodes" `answer` the same way,
        lmms-eval `tasks/refcoco/utils_rec.py`); COCO xywh boxes become xyxy."""
        rows = read_parquet(path, PARQUET_FIELDS, present=("image",))
        entries = []
        for i, row in enumerate(rows):
            where = f"{path}: row {i} (question_id {row['question_id']!r})"
            x, y, w, h = check_box(row["bbox"], where)
            if w <= 0 or h <= 0:
                raise DataError(f"{where}, field 'bbox': COCO [x, y, w, h] needs w, h > 0, got {row['bbox']}")
            answers = row["answer"]
            if (not isinstance(answers, list) or not answers
                    or not all(isinstance(a, str) and a.strip() for a in answers)):
                raise DataError(f"{where}, field 'answer': expected a non-empty list of expressions")
            for k, text in enumerate(answers):
                entries.append({"expression": text, "bbox": xywh_to_xyxy([x, y, w, h]),
                                "question_id": str(row["question_id"]), "expression_index": k,
                                "image": {"parquet": relative(path, self.data_dir), "row": i}})
        return entries

    def jsonl_entries(self, path: Path) -> list[dict[str, Any]]:
        base = Path(self.options.image_root) if self.options.image_root else path.parent
        entries = []
        for n, line in enumerate(read_jsonl(path), 1):
            where = f"{path}: line {n}"
            if not isinstance(line, dict):
                raise DataError(f"{where}: expected a JSON object")
            for key in ("image", "sent", "bbox"):
                if key not in line:
                    raise DataError(f"{where}: missing field {key!r}")
            if not isinstance(line["sent"], str) or not line["sent"].strip():
                raise DataError(f"{where}, field 'sent': expected a non-empty expression")
            box = check_box(line["bbox"], where)
            if box[2] <= box[0] or box[3] <= box[1]:
                raise DataError(f"{where}, field 'bbox': expected [x1, y1, x2, y2] with x2 > x1, y2 > y1, got {box}")
            ref = image_ref(line["image"], f"{where}, field 'image'")
            if ref is None or "path" not in ref:
                raise DataError(f"{where}, field 'image': expected a file path")
            image = resolve_inside(base, ref["path"], f"{where}, field 'image'")
            entries.append({"expression": line["sent"], "bbox": box, "question_id": str(n),
                            "expression_index": 0, "image": {"file": relative(image, self.data_dir.resolve())}})
        return entries

    # -- requests and scores -----------------------------------------------------------------

    def image(self, sample: Sample):
        ref = sample.data["image"]
        if "parquet" in ref:
            return self._images.read(self.data_dir / ref["parquet"], int(ref["row"]), "image")
        return read_image(self.data_dir / ref["file"], f"{self.name} sample {sample.id}, field 'image'")

    def target(self, sample: Sample) -> Any:
        """The ground-truth box, xyxy pixels (stored in each output record)."""
        return sample.data["bbox"]

    def request(self, sample: Sample, variant: Variant) -> Request:
        # The prompt is the bare expression; the model adds the grounding template (predict_grounding.py:57-101).
        options = replace(variant.options, steps=variant.options.steps or DEFAULT_STEPS)
        return Request(sample.id, "ground", sample.data["expression"], images=[self.image(sample)],
                       options=options)

    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        trace = output.get("trace") or {}
        base = {"split": sample.data["group"], "latency_s": number(trace.get("latency_s")),
                "steps": number(trace.get("steps"))}
        box = first_box(output.get("boxes"))
        if box is None:  # malformed reply: a miss, counted (predict_grounding.py scores it IoU 0)
            return {**base, "iou": 0.0, "correct": 0.0, "parse_failure": 1}
        iou = box_iou(box, sample.data["bbox"])
        return {**base, "iou": iou, "correct": float(iou >= IOU_THRESHOLD), "parse_failure": 0}

    def paper_deviations(self, samples: list[Sample]) -> list[str]:
        found = {s.data["group"] for s in samples}
        missing = [s for s in PAPER_SPLITS if s not in found]
        return [f"paper splits missing from the data: {', '.join(missing)}"] if missing else []

    @classmethod
    def make_fixture(cls, root: Path, seed: int = 0) -> Path:
        return make_refcoco_fixture(Path(root), seed)


def number(value: Any) -> float:
    """A trace value as a float (0 when absent or not a number)."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0
