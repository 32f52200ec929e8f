"""ChartQA (test, human and augmented splits): relaxed accuracy.

Protocol (benchmarks.md §7): the question plus a fixed instruction, one chart image, a short
greedy answer. Relaxed correctness as lmms-eval 0.7.3 `tasks/chartqa/utils.py::relaxed_correctness`
(from Qwen-VL / Pix2Struct): both strings through `float()`, a trailing `%` dividing by 100; when
both are numbers and the target is non-zero, correct iff the relative error is <= 5%; otherwise
case-insensitive string equality. No further normalisation: "Yes." fails against "Yes" and "$14"
against "14", as in the official scores ("14." passes: `float()` reads it; benchmarks.md §7.6 says
otherwise). A test checks per-sample agreement with lmms-eval's function.

Data layout under the task's data dir: the official vis-nlp/ChartQA test folder,
`test/test_human.json` and `test/test_augmented.json` (JSON lists of `{imgname, query, label}`)
with the charts in `test/png/`; the data dir may also be the `test/` folder itself.
Metrics: `acc` over both splits (lmms-eval `relaxed_overall`), `acc/human`, `acc/augmented`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from lavida_bench.protocol import Request
from lavida_bench.safety import resolve_inside
from lavida_bench.stats import mean_metric
from lavida_bench.tasks.base import DataError, Metric, Sample, ScoreContext, Task, Variant
from lavida_bench.tasks.understanding_fixtures import make_chartqa_fixture, open_image, parse_options, read_json

# lmms-eval chartqa.yaml, `lmms_eval_specific_kwargs.default` (empty pre-prompt), §7.2
POST_PROMPT = "\nAnswer the question with a single word."
MAX_NEW_TOKENS = 16  # chartqa.yaml generation_kwargs
MAX_RELATIVE_CHANGE = 0.05  # relaxed_correctness default, §7.3
SPLITS = ("human", "augmented")  # test_{split}.json in vis-nlp/ChartQA, §7.1
FIELDS = ("imgname", "query", "label")


@dataclass(frozen=True)
class ChartQAOptions:
    """`splits`: which of human / augmented to run (default both)."""

    splits: tuple[str, ...] = SPLITS

    def __post_init__(self) -> None:
        splits = tuple(self.splits)
        if not splits or any(s not in SPLITS for s in splits):
            raise ValueError(f"splits must be a non-empty subset of {list(SPLITS)}, got {list(splits)}")
        object.__setattr__(self, "splits", splits)


def to_float(text: str) -> float | None:
    """`float()` of the text, with a trailing '%' meaning a fraction of 100 (relaxed_correctness)."""
    try:
        return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_correct(prediction: str, target: str, max_relative_change: float = MAX_RELATIVE_CHANGE) -> bool:
    """ChartQA relaxed correctness (benchmarks.md §7.3). A zero target falls back to strings."""
    pred, gold = to_float(prediction), to_float(target)
    if pred is not None and gold:
        return abs(pred - gold) / abs(gold) <= max_relative_change
    return prediction.lower() == target.lower()


class ChartQA(Task):
    name = "chartqa"
    version = "1"
    capability = "understand"
    variants = ("plain",)

    def __init__(self, data_dir: str | Path | None, options: Mapping[str, Any] | None = None):
        super().__init__(data_dir, options)
        self.opts = parse_options(ChartQAOptions, self.options, self.name)

    def test_dir(self) -> Path:
        if self.data_dir is None:
            raise DataError("chartqa: no data dir given (expected the ChartQA folder with test/test_human.json)")
        for candidate in (self.data_dir / "test", self.data_dir):
            if (candidate / f"test_{self.opts.splits[0]}.json").exists():
                return candidate
        raise DataError(f"chartqa: {self.data_dir / 'test' / f'test_{self.opts.splits[0]}.json'} not found "
                        f"(expected the official layout test/test_{{human,augmented}}.json + test/png/)")

    def load(self) -> list[Sample]:
        folder = self.test_dir()
        samples = []
        for split in self.opts.splits:
            samples += self.load_split(folder / f"test_{split}.json", split)
        return samples

    def load_split(self, path: Path, split: str) -> list[Sample]:
        if not path.exists():
            raise DataError(f"chartqa: {path} not found")
        records = read_json(path)
        if not isinstance(records, list):
            raise DataError(f"{path}: expected a JSON list of {{imgname, query, label}} records")
        samples = []
        for i, rec in enumerate(records):
            where = f"{path}: record {i}"
            if not isinstance(rec, dict):
                raise DataError(f"{where}: expected an object")
            for key in FIELDS:
                if not isinstance(rec.get(key), str):
                    got = "missing" if key not in rec else f"a {type(rec[key]).__name__}"
                    raise DataError(f"{where}, field {key!r}: expected a string, {got}")
            image = resolve_inside(path.parent / "png", rec["imgname"], f"{where}, field 'imgname'")
            if not image.is_file():
                raise DataError(f"{where}, field 'imgname': {image} not found")
            samples.append(Sample(f"{split}/{i:05d}", {"split": split, "imgname": rec["imgname"],
                                                       "question": rec["query"], "answer": rec["label"]}))
        return samples

    def request(self, sample: Sample, variant: Variant) -> Request:
        d = sample.data
        options = replace(variant.options,
                          max_new_tokens=variant.options.max_new_tokens or MAX_NEW_TOKENS,
                          temperature=0.0 if variant.options.temperature is None else variant.options.temperature)
        image = open_image(self.test_dir() / "png" / d["imgname"], f"chartqa {sample.id}, field 'imgname'")
        return Request(sample.id, "understand", f"{d['question']}{POST_PROMPT}", images=[image], options=options)

    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        text = output.get("text")
        if not isinstance(text, str):
            return {"split": sample.data["split"], "correct": 0.0, "parse_failure": 1}
        correct = relaxed_correct(text, sample.data["answer"])
        return {"split": sample.data["split"], "correct": float(correct), "parse_failure": 0}

    def aggregate(self, scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
        metrics = {"acc": mean_metric([s["correct"] for s in scores])}
        for split in SPLITS:
            group = [s["correct"] for s in scores if s["split"] == split]
            if group:
                metrics[f"acc/{split}"] = mean_metric(group)
        metrics["parse_failure_rate"] = mean_metric([s["parse_failure"] for s in scores])
        return metrics

    @classmethod
    def make_fixture(cls, root: Path, seed: int = 0) -> Path:
        return make_chartqa_fixture(Path(root), seed)
