"""DPG-Bench: dense-prompt text-to-image (1,065 prompts), scored by VQA over a question graph.

Reproduces TencentQQGYLab/ELLA `dpg_bench/compute_dpg_bench.py` (benchmarks.md §2.3): every
question of an item is asked on each image, 1.0 iff the answer is exactly "yes"; a question with a
parent (CSV order, in place) scored 0 is zeroed; an image scores the mean of its questions, an item
the mean of its images, and DPG-Bench = 100 x the mean over items. Category scores pool all
questions of all items by L2 (`tuple` text before "(") and L1 (text before the first "-"), x100.

Two protocols (benchmarks.md §2.2): `single` = Lavida-O's 1 image per prompt scored whole
(`pic_num=1`); `grid` = ELLA's 4 images per prompt. The official script tiles the 4 into a 2x2 grid
and crops the quadrants back out; each quadrant is exactly one generated image, so here each image
is its own sample (`<item>/<k>`, resumable) and the item score averages them - the same number.

Two compatibility modes for the official script's quirks (benchmarks.md §2.6):
`official` drops the CSV's first question (`if i == 0: continue`), skips an item whose question
names a missing parent (the script's KeyError), and takes category scores from the last image only
(ELLA issue #60); `fixed` keeps every question, refuses dangling parents, and pools all images.
Category scores use the raw answers like the official script (`category_answers: raw`) or the
answers after the dependency rule (`dependency`), labelled as such.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from lavida_bench.protocol import Request
from lavida_bench.stats import mean_metric
from lavida_bench.tasks.base import DataError, Metric, Sample, ScoreContext, Task, Variant
from lavida_bench.tasks.generation_fixtures import (DPG_COLUMNS, generation_request, image_samples,
                                                    parse_options, require_file, write_dpg_fixture)

PROMPTS_DIR = "prompts"  # dpg_bench/prompts/<item_id>.txt (benchmarks.md §2.1)
YES = "yes"  # compute_dpg_one_sample: float(answer == 'yes'), no normalisation
IMAGES_PER_PROTOCOL = {"single": 1, "grid": 4}  # benchmarks.md §2.2


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
    name = "dpg_bench"
    version = "1"
    capability = "generate"
    variants = ("plain", "plan", "plan_reflect")

    def __init__(self, data_dir: str | Path | None, options: Mapping[str, Any] | None = None):
        super().__init__(data_dir, options)
        self.opts = parse_options(DpgOptions, self.options, self.name)

    def load(self) -> list[Sample]:
        if self.data_dir is None:
            raise DataError(f"task {self.name}: no data folder configured (tasks.dpg_bench.data)")
        prompts = read_prompts(self.data_dir / PROMPTS_DIR)
        csv_path = self.data_dir / self.opts.csv
        questions = read_questions(csv_path, drop_first=self.opts.compat == "official")
        samples = []
        for item_id, text in prompts.items():
            item_questions = questions.get(item_id, [])
            broken = item_problem(item_questions)
            if broken and self.opts.compat == "fixed":
                raise DataError(f"{csv_path}: item {item_id!r}: {broken}")
            data = {"item": item_id, "prompt": text, "questions": [q.to_json() for q in item_questions],
                    "skip": broken}
            samples += image_samples(item_id, data, IMAGES_PER_PROTOCOL[self.opts.protocol])
        return samples

    def request(self, sample: Sample, variant: Variant) -> Request:
        # dpg.sh passes --prefix "": the prompt as-is (benchmarks.md §2.2)
        return generation_request(sample, "generate", sample.data["prompt"], variant, self.opts.resolution)

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
        final = apply_dependencies(questions, raw)
        return {**base, "score": sum(final) / len(final), "answers": answers, "raw": raw, "final": final,
                "categories": [q.category for q in questions]}

    def aggregate(self, scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
        kept = [s for s in scores if "skipped" not in s]
        by_item: dict[str, list[Mapping[str, Any]]] = {}
        for s in kept:
            by_item.setdefault(s["item"], []).append(s)
        items = sorted(by_item)
        metrics = {"overall": mean_metric([100 * mean([s["score"] for s in by_item[i]]) for i in items])}
        items_seen = {s["item"] for s in scores}
        skipped = {s["item"] for s in scores if "skipped" in s}
        metrics["skipped_items_fraction"] = mean_metric([float(i in skipped) for i in sorted(items_seen)])
        metrics.update(self.category_metrics(by_item))
        return metrics

    def category_metrics(self, by_item: Mapping[str, list[Mapping[str, Any]]]) -> dict[str, Metric]:
        """Pooled per-question values by L2 and L1 category, x100 (compute_dpg_bench.py main)."""
        field = "raw" if self.opts.category_answers == "raw" else "final"
        l2: dict[str, list[float]] = {}
        for images in by_item.values():
            if self.opts.compat == "official":  # ELLA #60: only the last crop's answers survive
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

    @classmethod
    def make_fixture(cls, root: Path, seed: int = 0) -> Path:
        """Three shapes-world items with parent/child questions (seed unused: fixed scenes)."""
        return write_dpg_fixture(Path(root))


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def apply_dependencies(questions: list[Question], raw: list[float]) -> list[float]:
    """Zero a question if any non-zero parent currently scores 0, walking in CSV order and
    updating in place, so zeros propagate down chains whose parents come first (§2.3)."""
    final = list(raw)
    index = {q.pid: i for i, q in enumerate(questions)}
    for i, q in enumerate(questions):
        if any(p != 0 and final[index[p]] == 0 for p in q.parents):
            final[i] = 0.0
    return final


def item_problem(questions: list[Question]) -> str | None:
    """Why the official script cannot score this item (None if it can)."""
    if not questions:
        return "no questions in the CSV"
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
    for path in files:
        text = path.read_text(encoding="utf-8").strip()
        if not text:
            raise DataError(f"{path}: empty prompt")
        out[path.stem] = text
    return out


def read_questions(path: Path, drop_first: bool) -> dict[str, list[Question]]:
    """Questions per item in CSV order. `drop_first` reproduces prepare_dpg_data's skip of the
    first data row (benchmarks.md §2.6)."""
    require_file(path, "DPG-Bench question CSV (dpg_bench.csv from TencentQQGYLab/ELLA)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in DPG_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: header lacks column(s) {missing} (expected {','.join(DPG_COLUMNS)})")
        rows = list(reader)
    out: dict[str, list[Question]] = {}
    previous = None
    for n, row in enumerate(rows[1:] if drop_first else rows, start=3 if drop_first else 2):
        item = row["item_id"]
        if item != previous and item in out:
            raise DataError(f"{path}: line {n}: rows of item {item!r} are not consecutive")
        previous = item
        out.setdefault(item, []).append(parse_question(row, f"{path}: line {n}"))
    return out


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
