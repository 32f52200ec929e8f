"""ImgEdit-Bench (basic single-turn suite): 737 edits in 9 categories, scored by a VLM judge.

Reproduces PKU-YuanGroup/ImgEdit `Benchmark/Basic` (benchmarks.md §4.3): one judge request per
item with the category's rubric from the official `prompts.json` (`<edit_prompt>` replaced by the
instruction) and two images, original first, edited second; the item score is the mean of the
`Name: <digits>` lines of the reply, rounded to 2 decimals (`step1_get_avgscore.py`); items whose
reply has no such line are dropped, not zeroed; a category is the mean of its items
(`step2_typescore.py`). The official scripts compute no overall: both the category mean (default,
`overall`) and the item-weighted mean (`overall_items`) are reported. Rounding to 2 decimals is
applied to item scores as the official step 1 does; category and overall values keep full
precision (rounding is presentation).

Requests follow Lavida-O's `eval_img/eval_imgedit.py` (benchmarks.md §4.2): the source image is
resized so its shorter side is 1024 (LANCZOS) and centre-cropped to 1024x1024; the instruction is
sent as-is (no template; the model adds none of its micro-conditioning for edits). Which image the
judge sees as "original" is an option (`judge_reference`), recorded in every score: the official
script sends the benchmark image; the cropped model input avoids penalising the cut-off borders.

Judge failures (after the backend's retries) and unparseable replies are recorded per item,
excluded from the scores as the official scripts do, and counted in their own metrics.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from PIL import Image

from lavida_bench.protocol import Request
from lavida_bench.safety import redact, resolve_inside
from lavida_bench.stats import macro_metric, mean_metric
from lavida_bench.tasks.base import DataError, Metric, Sample, ScoreContext, Task, Variant, read_image
from lavida_bench.tasks.generation_fixtures import (generation_request, parse_options, read_json,
                                                    write_imgedit_fixture)

# Names the instruction file goes by: Lavida-O's unpacked Benchmark.tar, the ImgEdit repo, and
# Lavida-O's eval_img copy (benchmarks.md §4.1; all three hold the same bytes).
INSTRUCTION_FILES = ("singleturn.json", "basic_edit.json", "imagedit.json")
PLACEHOLDER = "<edit_prompt>"  # basic_bench.py: prompt.replace('<edit_prompt>', edit_prompt)
RELEASE_CROP = 1024  # eval_imgedit.py: resize_and_center_crop(image, 1024)


@dataclass(frozen=True)
class ImgEditOptions:
    instructions: str | None = None  # file in the data folder; None = the first of INSTRUCTION_FILES
    images: str = "."  # folder (inside the data folder) that item ids are relative to
    rubrics: str = "prompts.json"  # the official Benchmark/Basic/prompts.json, supplied by the user
    crop: Literal["center", "none"] = "center"
    crop_size: int = RELEASE_CROP
    resolution: int | None = None  # output side; None = the model's default
    judge_reference: Literal["original", "cropped"] = "original"

    def __post_init__(self) -> None:
        if self.crop_size < 1:
            raise ValueError(f"option 'crop_size' must be >= 1, got {self.crop_size}")


class ImgEdit(Task):
    name = "imgedit"
    version = "1"
    capability = "edit"
    variants = ("plain", "plan", "plan_reflect")

    def __init__(self, data_dir: str | Path | None, options: Mapping[str, Any] | None = None):
        super().__init__(data_dir, options)
        self.opts = parse_options(ImgEditOptions, self.options, self.name)

    @property
    def image_root(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / self.opts.images

    def load(self) -> list[Sample]:
        if self.data_dir is None:
            raise DataError(f"task {self.name}: no data folder configured (tasks.imgedit.data)")
        path = self.instruction_path()
        items = read_instructions(path)
        rubrics = read_rubrics(self.data_dir / self.opts.rubrics, {i["edit_type"] for i in items.values()})
        samples = []
        for key, item in items.items():
            source = resolve_inside(self.image_root, item["id"], f"{path}: record {key!r}: field 'id'")
            if not source.is_file():
                raise DataError(f"{path}: record {key!r}: source image {source} not found")
            samples.append(Sample(key, {**item, "rubric": rubrics[item["edit_type"]]}))
        return samples

    def instruction_path(self) -> Path:
        assert self.data_dir is not None
        if self.opts.instructions:
            return self.data_dir / self.opts.instructions
        for name in INSTRUCTION_FILES:
            if (self.data_dir / name).is_file():
                return self.data_dir / name
        raise DataError(f"{self.data_dir}: no instruction file (looked for {', '.join(INSTRUCTION_FILES)})")

    def source_image(self, sample: Sample) -> Image.Image:
        path = resolve_inside(self.image_root, sample.data["id"], f"{self.name} sample {sample.id}")
        return read_image(path, f"{path}: source image of item {sample.id}")

    def model_input(self, sample: Sample) -> Image.Image:
        image = self.source_image(sample)
        return center_crop(image, self.opts.crop_size) if self.opts.crop == "center" else image

    def request(self, sample: Sample, variant: Variant) -> Request:
        return generation_request(sample, "edit", sample.data["prompt"], variant, self.opts.resolution,
                                  images=[self.model_input(sample)])

    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        base = {"edit_type": sample.data["edit_type"], "judge_reference": self.opts.judge_reference}
        if not output.get("image"):
            return {**base, "status": "no_image", "score": None}
        reference = (self.source_image(sample) if self.opts.judge_reference == "original"
                     else self.model_input(sample))
        prompt = sample.data["rubric"].replace(PLACEHOLDER, sample.data["prompt"])
        judge = ctx.backends.judge
        try:
            reply = judge.judge(f"{self.name}/{sample.id}", prompt, [reference, ctx.load_image(output["image"])])
        except Exception as err:  # any judge failure is this item's record, never the run's end
            return {**base, "status": "judge_error", "score": None, "judge": judge.name,
                    "error": redact(f"{type(err).__name__}: {err}")}
        values = reply_scores(reply)
        score = round(sum(values) / len(values), 2) if values else None  # step1_get_avgscore.py
        return {**base, "status": "ok" if values else "unparseable", "score": score, "aspects": values,
                "judge": judge.name, "reply": reply}

    def aggregate(self, scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
        by_type: dict[str, list[float]] = {}
        for s in scores:
            if s["score"] is not None:
                by_type.setdefault(s["edit_type"], []).append(s["score"])
        metrics = {t: mean_metric(v) for t, v in sorted(by_type.items())}
        metrics["overall"] = macro_metric(by_type)  # unweighted mean of the category scores
        metrics["overall_items"] = mean_metric([v for vs in by_type.values() for v in vs])
        for status in ("unparseable", "judge_error", "no_image"):
            metrics[f"{status}_rate"] = mean_metric([float(s["status"] == status) for s in scores])
        return metrics

    @classmethod
    def make_fixture(cls, root: Path, seed: int = 0) -> Path:
        """Four shapes-world edits in the official json layout, with fixture rubrics (seed unused)."""
        return write_imgedit_fixture(Path(root))


def reply_scores(reply: Any) -> list[int]:
    """The `Name: <digits>` integers of a judge reply (step1_get_avgscore.py: strip each line,
    split on ': ', exactly two parts and the second all digits). Non-text replies give []."""
    if not isinstance(reply, str):
        return []
    values = []
    for line in reply.splitlines():
        parts = line.strip().split(": ")
        if len(parts) == 2 and parts[1].isdigit():
            values.append(int(parts[1]))
    return values


def center_crop(image: Image.Image, side: int) -> Image.Image:
    """Shorter side to `side` (LANCZOS), then the central side x side square
    (mm_utils.resize_and_center_crop, lavida-o-model.md §6.3)."""
    scale = side / min(image.size)
    width, height = max(side, round(image.width * scale)), max(side, round(image.height * scale))
    resized = image.resize((width, height), Image.LANCZOS)
    left, top = (width - side) // 2, (height - side) // 2
    return resized.crop((left, top, left + side, top + side))


def read_instructions(path: Path) -> dict[str, dict[str, str]]:
    """{key: {"id", "prompt", "edit_type"}}, every field a non-empty string (benchmarks.md §4.1)."""
    data = read_json(path, "ImgEdit instruction file")
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected a non-empty JSON object keyed by item number")
    for key, item in data.items():
        for field in ("id", "prompt", "edit_type"):
            if not isinstance(item, dict) or not isinstance(item.get(field), str) or not item[field]:
                raise DataError(f"{path}: record {key!r}: field {field!r} must be a non-empty string")
    return {k: {f: v[f] for f in ("id", "prompt", "edit_type")} for k, v in data.items()}


def read_rubrics(path: Path, edit_types: set[str]) -> dict[str, str]:
    """The rubric per edit_type from prompts.json; each must hold the `<edit_prompt>` slot."""
    data = read_json(path, "ImgEdit rubric file: the official Benchmark/Basic/prompts.json")
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object keyed by edit_type")
    for edit_type in sorted(edit_types):
        rubric = data.get(edit_type)
        if not isinstance(rubric, str) or PLACEHOLDER not in rubric:
            raise DataError(f"{path}: record {edit_type!r}: expected a rubric string containing {PLACEHOLDER}")
    return {t: data[t] for t in edit_types}
