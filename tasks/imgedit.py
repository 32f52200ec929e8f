"""ImgEdit-Bench (basic single-turn suite): 737 edits in 9 categories, scored by a VLM judge.

Reproduces PKU-YuanGroup/ImgEdit `Benchmark/Basic` (`basic_bench.py`, `step1_get_avgscore.py`,
`step2_typescore.py`): one judge request per
item with the category's rubric from the official `prompts.json` (`<edit_prompt>` replaced by the
instruction) and two images, original first, edited second; the item score is the mean of the
`Name: <digits>` lines of the reply, rounded to 2 decimals (`step1_get_avgscore.py`); items whose
reply has no such line are dropped, not zeroed; a category is the mean of its items
(`step2_typescore.py`). The official scripts compute no overall: both the category mean (default,
`overall`) and the item-weighted mean (`overall_items`) are reported. Rounding to 2 decimals is
applied to item scores as the official step 1 does; category and overall values keep full
precision (rounding is presentation).

Requests follow Lavida-O's `eval_img/eval_imgedit.py` (with `llava/eval/1024_eval_edit.yaml`): the source image is
resized so its shorter side is 1024 (LANCZOS) and centre-cropped to 1024x1024; the instruction is
sent as-is (no template; the model adds none of its micro-conditioning for edits). Which image the
judge sees as "original" is an option (`judge_reference`), recorded in every score: the official
script sends the benchmark image; the cropped model input avoids penalising the cut-off borders.

Unparseable replies are recorded per item, excluded from the scores as the official scripts do,
and counted in their own metric. A judge failure (after the backend's retries) is not a score: it
raises, so the scoring stage records a scoring error (the run exits 1) and judges the item again
on the next run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from PIL import Image

from lavida_bench.api import DataError, Metric, MetricSpec, Request, Sample, Variant
from lavida_bench.safety import resolve_inside
from lavida_bench.stats import mean_metric
from lavida_bench.tasks.base import ScoreContext, Task, aggregate_declared, read_image
from lavida_bench.tasks.files import read_json
from lavida_bench.tasks.generation import generation_request
from lavida_bench.tasks.generation_fixtures import write_imgedit_fixture

# Names the instruction file goes by: Lavida-O's unpacked Benchmark.tar, the ImgEdit repo, and
# Lavida-O's eval_img copy (HF sysuyy/ImgEdit `Benchmark.tar`, ImgEdit `Benchmark/Basic/basic_edit.json`,
# LaVida-O `eval_img/imagedit.json`; all three hold the same bytes).
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
    options_schema = ImgEditOptions
    version = "1"
    capability = "edit"
    variants = ("plain", "plan", "plan_reflect")
    evaluators = ("judge",)
    # step2_typescore.py: a category is the mean of its items; the official scripts give no
    # overall, so both the category mean (headline) and the item-weighted mean are reported.
    metrics = (
        MetricSpec("overall", "higher", "1-5", "macro over edit_type", field="score", macro="edit_type",
                   headline=True),
        MetricSpec("overall_items", "higher", "1-5", "mean over items", field="score"),
        MetricSpec("*_rate", "lower", "0-1", "fraction of items with that status"),
        MetricSpec("*", "higher", "1-5", "mean over the edit type", field="score", where=("edit_type",)),
    )

    @property
    def image_root(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / self.options.images

    def load(self) -> list[Sample]:
        if self.data_dir is None:
            raise DataError(f"task {self.name}: no data folder configured (tasks.{self.name}.data)")
        path = self.instruction_path()
        items = read_instructions(path)
        rubrics = read_rubrics(self.data_dir / self.options.rubrics, {i["edit_type"] for i in items.values()})
        samples = []
        for key, item in items.items():
            source = resolve_inside(self.image_root, item["id"], f"{path}: record {key!r}: field 'id'")
            if not source.is_file():
                raise DataError(f"{path}: record {key!r}: source image {source} not found")
            samples.append(Sample(key, {**item, "rubric": rubrics[item["edit_type"]]}))
        return samples

    def instruction_path(self) -> Path:
        assert self.data_dir is not None
        if self.options.instructions:
            return self.data_dir / self.options.instructions
        for name in INSTRUCTION_FILES:
            if (self.data_dir / name).is_file():
                return self.data_dir / name
        raise DataError(f"{self.data_dir}: no instruction file (looked for {', '.join(INSTRUCTION_FILES)})")

    def source_image(self, sample: Sample) -> Image.Image:
        path = resolve_inside(self.image_root, sample.data["id"], f"{self.name} sample {sample.id}")
        return read_image(path, f"{path}: source image of item {sample.id}")

    def model_input(self, sample: Sample) -> Image.Image:
        image = self.source_image(sample)
        return center_crop(image, self.options.crop_size) if self.options.crop == "center" else image

    def request(self, sample: Sample, variant: Variant) -> Request:
        return generation_request(sample, "edit", sample.data["prompt"], variant, self.options.resolution,
                                  images=[self.model_input(sample)])

    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        base = {"edit_type": sample.data["edit_type"], "judge_reference": self.options.judge_reference}
        if not output.get("image"):
            return {**base, "status": "no_image", "score": None}
        reference = (self.source_image(sample) if self.options.judge_reference == "original"
                     else self.model_input(sample))
        prompt = sample.data["rubric"].replace(PLACEHOLDER, sample.data["prompt"])
        judge = ctx.backends.judge
        # a judge failure raises: the scoring stage records a scoring error and retries it next run
        reply = judge.judge(f"{self.name}/{sample.id}", prompt, [reference, ctx.load_image(output["image"])])
        values = reply_scores(reply)
        score = round(sum(values) / len(values), 2) if values else None  # step1_get_avgscore.py
        return {**base, "status": "ok" if values else "unparseable", "score": score, "aspects": values,
                "judge": judge.name, "reply": reply}

    def aggregate(self, scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
        metrics = aggregate_declared(self.metrics, scores)
        statuses = ["unparseable", "no_image"] + sorted({s["status"] for s in scores} - {"ok", "unparseable", "no_image"})
        for status in statuses:
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
    (LaVida-O `llava/mm_utils.py:504` `resize_and_center_crop`, the definition that wins)."""
    scale = side / min(image.size)
    width, height = max(side, round(image.width * scale)), max(side, round(image.height * scale))
    resized = image.resize((width, height), Image.LANCZOS)
    left, top = (width - side) // 2, (height - side) // 2
    return resized.crop((left, top, left + side, top + side))


def read_instructions(path: Path) -> dict[str, dict[str, str]]:
    """{key: {"id", "prompt", "edit_type"}}, every field a non-empty string (ImgEdit `basic_edit.json`)."""
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
