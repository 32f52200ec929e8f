"""DPG-Bench: dense-prompt text-to-image (1,065 prompts), scored by VQA over a question graph.

Reproduces TencentQQGYLab/ELLA `dpg_bench/compute_dpg_bench.py`: every
question of an item is asked on each image, 1.0 iff the answer is exactly "yes"; a question with a
parent (CSV order, in place) scored 0 is zeroed; an image scores the mean of its questions, an item
the mean of its images, and DPG-Bench = 100 x the mean over items. Category scores pool all
questions of all items by L2 (`tuple` text before "(") and L1 (text before the first "-"), x100.

Two protocols (LaVida-O `eval_img/dpg.sh`; ELLA `dpg_bench/dist_eval.sh`): `single` = Lavida-O's 1 image per prompt scored whole
(`pic_num=1`); `grid` = ELLA's 4 images per prompt. The official script tiles the 4 into a 2x2 grid
and crops the quadrants back out; each quadrant is exactly one generated image, so here each image
is its own sample (`<item>/<k>`, resumable) and the item score averages them - the same number.

Two compatibility modes for the official script's quirks (`compute_dpg_bench.py`; ELLA issue #60):
`official` drops the CSV's first question (`if i == 0: continue`), keeps one question per repeated
proposition id, skips an item whose dependency walk reaches a missing parent (the script's KeyError,
which drops the whole image file: with the grid protocol all four images), and takes category
scores from the last image only (ELLA issue #60); `fixed` keeps every question, refuses repeated
ids and dangling parents, and pools all images.
Category scores use the raw answers like the official script (`category_answers: raw`) or the
answers after the dependency rule (`dependency`), labelled as such.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from lavida_bench.api import DataError, Metric, MetricSpec, Request, Sample, Variant
from lavida_bench.safety import resolve_inside
from lavida_bench.stats import mean_metric
from lavida_bench.tasks.base import ScoreContext, Task
from lavida_bench.tasks.files import read_text, require_file
from lavida_bench.tasks.generation import generation_request, image_samples
from lavida_bench.tasks.generation_fixtures import DPG_COLUMNS, write_dpg_fixture

PROMPTS_DIR = "prompts"  # ELLA dpg_bench/prompts/<item_id>.txt
YES = "yes"  # compute_dpg_one_sample: float(answer == 'yes'), no normalisation
IMAGES_PER_PROTOCOL = {"single": 1, "grid": 4}  # LaVida-O eval_img/dpg.sh pic_num=1; ELLA dist_eval.sh PIC_NUM=4


@dataclass(frozen=True)
class DpgOptions:
    protocol: Literal["single", "grid"] = "single"
    resolution: int | None = None  # output side; None = the model's default (1024)
    csv: str = "dpg_bench.csv"  # question file inside the data folder
    compat: Literal["official", "fixed"] = "official"
    category_answers: Literal["raw", "dependency"] = "raw"


@dataclass(frozen=True)
class Question:
    pid: int  # proposition_id, 1-based within the item
    parents: tuple[int, ...]  # dependency ids; 0 = no parent
    category: str  # L2, e.g. "entity - whole"
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "parents": list(self.parents), "category": self.category, "text": self.text}


class DPGBench(Task):
    options_schema = DpgOptions
    version = "1"
    capability = "generate"
    variants = ("plain", "plan", "plan_reflect")
    evaluators = ("vqa",)
    # compute_dpg_bench.py: 100 x the mean over items of their images' mean question score (with
    # one image per item, or the same number per item, that is 100 x the mean per image).
    metrics = (
        MetricSpec("overall", "higher", "0-100", "mean over items of their images", field="score",
                   factor=100.0, headline=True),
        MetricSpec("skipped_items_fraction", "diagnostic", "0-1", "fraction of items"),
        MetricSpec("L1/*", "higher", "0-100", "pooled over the category's questions"),
        MetricSpec("L2/*", "higher", "0-100", "pooled over the category's questions"),
    )

    def load(self) -> list[Sample]:
        if self.data_dir is None:
            raise DataError(f"task {self.name}: no data folder configured (tasks.{self.name}.data)")
        prompts = read_prompts(self.data_dir / PROMPTS_DIR)
        csv_path = self.data_dir / self.options.csv
        questions = read_questions(csv_path, official=self.options.compat == "official")
        samples = []
        for item_id, text in prompts.items():
            item_questions = questions.get(item_id, [])
            broken = item_problem(item_questions, check_parents=self.options.compat == "fixed")
            if broken and self.options.compat == "fixed":
                raise DataError(f"{csv_path}: item {item_id!r}: {broken}")
            data = {"item": item_id, "prompt": text, "questions": [q.to_json() for q in item_questions],
                    "skip": broken}
            samples += image_samples(item_id, data, IMAGES_PER_PROTOCOL[self.options.protocol])
        return samples

    def request(self, sample: Sample, variant: Variant) -> Request:
        # LaVida-O eval_img/dpg.sh passes --prefix "": the prompt as-is
        return generation_request(sample, "generate", sample.data["prompt"], variant, self.options.resolution)

    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        base = {"item": sample.data["item"], "image_index": sample.data["image_index"]}
        if sample.data["skip"]:  # the official script fails on this item and leaves it out
            return {**base, "skipped": sample.data["skip"]}
        questions = [Question(q["pid"], tuple(q["parents"]), q["category"], q["text"])
                     for q in sample.data["questions"]]
        if output.get("image"):
            image = ctx.load_image(output["image"])
            answers = [ctx.backends.vqa.answer(image, q.text) for q in questions]
        else:
            answers = ["" for _ in questions]  # no image: every question unanswered
        raw = [float(a == YES) for a in answers]
        try:
            final = apply_dependencies(questions, raw)
        except MissingParent as err:  # compute_dpg_bench.py lines 213-215: the image is left out
            return {**base, "skipped": str(err), "answers": answers}
        return {**base, "score": sum(final) / len(final), "answers": answers, "raw": raw, "final": final,
                "categories": [q.category for q in questions]}

    def aggregate(self, scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
        skipped = {s["item"] for s in scores if "skipped" in s}  # the script drops the whole image file
        by_item: dict[str, list[Mapping[str, Any]]] = {}
        for s in scores:
            if s["item"] not in skipped:
                by_item.setdefault(s["item"], []).append(s)
        items = sorted(by_item)
        metrics = {"overall": mean_metric([100 * mean([s["score"] for s in by_item[i]]) for i in items])}
        items_seen = {s["item"] for s in scores}
        metrics["skipped_items_fraction"] = mean_metric([float(i in skipped) for i in sorted(items_seen)])
        metrics.update(self.category_metrics(by_item))
        return metrics

    def category_metrics(self, by_item: Mapping[str, list[Mapping[str, Any]]]) -> dict[str, Metric]:
        """Pooled per-question values by L2 and L1 category, x100 (compute_dpg_bench.py main)."""
        field = "raw" if self.options.category_answers == "raw" else "final"
        l2: dict[str, list[float]] = {}
        for images in by_item.values():
            if self.options.compat == "official":  # ELLA #60: only the last crop's answers survive
                images = [max(images, key=lambda s: s["image_index"])]
            for s in images:
                for category, value in zip(s["categories"], s[field], strict=True):
                    l2.setdefault(category, []).append(100 * value)
        l1: dict[str, list[float]] = {}
        for category, values in l2.items():
            l1.setdefault(category.split("-")[0].strip(), []).extend(values)
        out = {f"L1/{c}": mean_metric(v) for c, v in sorted(l1.items())}
        out.update({f"L2/{c}": mean_metric(v) for c, v in sorted(l2.items())})
        return out

    def paper_deviations(self, samples: list[Sample]) -> list[str]:
        return [] if self.options.protocol == "single" else ["grid protocol (Lavida-O's number: 1 image per prompt)"]

    @classmethod
    def make_fixture(cls, root: Path, seed: int = 0) -> Path:
        """Three shapes-world items with parent/child questions (seed unused: fixed scenes)."""
        return write_dpg_fixture(Path(root))


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


class MissingParent(Exception):
    """The dependency walk reached a parent id that has no question (the official KeyError)."""


def apply_dependencies(questions: list[Question], raw: list[float]) -> list[float]:
    """The walk of compute_dpg_bench.py lines 140-153: questions in CSV order, updated in place
    (zeros propagate down chains whose parents come first); each question's parents in order,
    id 0 skipped, the first parent scoring 0 zeroes it and ends its walk. A parent id without a
    question raises `MissingParent` only when reached, as the script's `qid2scores[parent_id]`."""
    final = list(raw)
    index = {q.pid: i for i, q in enumerate(questions)}
    for i, q in enumerate(questions):
        for p in q.parents:
            if p == 0:
                continue
            if p not in index:
                raise MissingParent(f"question {q.pid} depends on missing proposition {p}")
            if final[index[p]] == 0:
                final[i] = 0.0
                break
    return final


def item_problem(questions: list[Question], check_parents: bool) -> str | None:
    """Why this item cannot be scored whatever the answers (None if it can): no questions, or,
    with `check_parents`, a parent id without a question (official mode meets one only if the
    walk reaches it, which depends on the answers: `apply_dependencies`)."""
    if not questions:
        return "no questions in the CSV"
    if not check_parents:
        return None
    pids = {q.pid for q in questions}
    for q in questions:
        missing = [p for p in q.parents if p != 0 and p not in pids]
        if missing:
            return f"question {q.pid} depends on missing proposition(s) {missing}"
    return None


def read_prompts(folder: Path) -> dict[str, str]:
    """`<item_id>.txt` -> stripped prompt text, sorted by item id."""
    if not folder.is_dir():
        raise DataError(f"{folder}: missing (DPG-Bench prompts folder with <item_id>.txt files)")
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise DataError(f"{folder}: no <item_id>.txt prompt files")
    out = {}
    for path in files:  # a prompt file symlinked out of the folder is refused, not read
        text = read_text(resolve_inside(folder, path.name, f"{path}: prompt file")).strip()
        if not text:
            raise DataError(f"{path}: empty prompt")
        out[path.stem] = text
    return out


def read_questions(path: Path, official: bool) -> dict[str, list[Question]]:
    """Questions per item in CSV order. `official` reproduces prepare_dpg_data
    (compute_dpg_bench.py lines 65-99): the first data row is skipped (`if i == 0: continue`), and
    a repeated proposition id keeps one question, the later row's content in the earlier row's
    place (its dicts are keyed by id); otherwise every row is kept and a repeated id is refused."""
    require_file(path, "DPG-Bench question CSV (dpg_bench.csv from TencentQQGYLab/ELLA)")
    # pandas.read_csv (line 71) drops a UTF-8 byte-order mark before the header
    reader = csv.DictReader(io.StringIO(read_text(path).removeprefix("\ufeff"), newline=""))
    missing = [c for c in DPG_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{path}: header lacks column(s) {missing} (expected {','.join(DPG_COLUMNS)})")
    rows = list(reader)
    out: dict[str, dict[int, Question]] = {}
    previous = None
    for n, row in enumerate(rows[1:] if official else rows, start=3 if official else 2):
        item = row["item_id"]
        if item != previous and item in out:
            raise DataError(f"{path}: line {n}: rows of item {item!r} are not consecutive")
        previous = item
        question = parse_question(row, f"{path}: line {n}")
        by_pid = out.setdefault(item, {})
        if question.pid in by_pid and not official:
            raise DataError(f"{path}: line {n}: item {item!r} repeats proposition_id {question.pid}")
        by_pid[question.pid] = question  # a dict keeps the first position of a replaced key
    return {item: list(by_pid.values()) for item, by_pid in out.items()}


def parse_question(row: Mapping[str, str | None], where: str) -> Question:
    empty = [c for c in DPG_COLUMNS if row.get(c) is None]
    if empty:
        raise DataError(f"{where}: row is short, no value for column(s) {empty}")
    try:
        pid = int(row["proposition_id"])
    except ValueError as err:
        raise DataError(f"{where}: field 'proposition_id' is not an integer: {row['proposition_id']!r}") from err
    try:
        parents = tuple(int(p.strip()) for p in row["dependency"].split(","))
    except ValueError as err:
        raise DataError(f"{where}: field 'dependency' is not a comma-separated list of integers: "
                        f"{row['dependency']!r}") from err
    if "(" not in row["tuple"]:
        raise DataError(f"{where}: field 'tuple' has no '(': {row['tuple']!r}")
    question = row["question_natural_language"]
    if not question:
        raise DataError(f"{where}: field 'question_natural_language' is empty")
    return Question(pid, parents, row["tuple"].split("(")[0].strip(), question)
