"""ChartQA (test, human and augmented splits): relaxed accuracy.

Protocol (lmms-eval `tasks/chartqa/`, as vendored in LaVida-O `eval/lmms_eval/tasks/chartqa`): the question plus a fixed instruction, one chart image, a short
greedy answer. Relaxed correctness as lmms-eval 0.7.3 `tasks/chartqa/utils.py::relaxed_correctness`
(from Qwen-VL / Pix2Struct): both strings through `float()`, a trailing `%` dividing by 100; when
both are numbers and the target is non-zero, correct iff the relative error is <= 5%; otherwise
case-insensitive string equality. No further normalisation: "Yes." fails against "Yes" and "$14"
against "14", as in the official scores ("14." passes: `float()` reads it). A test checks per-sample agreement with lmms-eval's function.

Data layout under the task's data dir: the official vis-nlp/ChartQA test folder,
`test/test_human.json` and `test/test_augmented.json` (JSON lists of `{imgname, query, label}`)
with the charts in `test/png/`; the data dir may also be the `test/` folder itself.
Metrics: `acc` over both splits (lmms-eval `relaxed_overall`), `acc/human`, `acc/augmented`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from lavida_bench.api import DataError, MetricSpec, Request, Sample, Variant
from lavida_bench.safety import resolve_inside
from lavida_bench.tasks.base import ScoreContext, Task, read_image
from lavida_bench.tasks.files import read_json
from lavida_bench.tasks.understanding_fixtures import make_chartqa_fixture

# lmms-eval chartqa.yaml, `lmms_eval_specific_kwargs.default` (empty pre-prompt)
POST_PROMPT = "\nAnswer the question with a single word."
MAX_NEW_TOKENS = 16  # chartqa.yaml generation_kwargs
MAX_RELATIVE_CHANGE = 0.05  # lmms-eval tasks/chartqa/utils.py relaxed_correctness default
SPLITS = ("human", "augmented")  # `ChartQA Dataset/test/test_{split}.json` in vis-nlp/ChartQA
FIELDS = ("imgname", "query", "label")


def build_prompt(question: str) -> str:
    """The question as lmms-eval's chartqa task asks it (its `post_prompt` appended)."""
    return f"{question}{POST_PROMPT}"


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
    """ChartQA relaxed correctness (lmms-eval `tasks/chartqa/utils.py`). A zero target falls back to strings."""
    pred, gold = to_float(prediction), to_float(target)
    if pred is not None and gold:
        return abs(pred - gold) / abs(gold) <= max_relative_change
    return prediction.lower() == target.lower()


class ChartQA(Task):
    options_schema = ChartQAOptions
    version = "1"
    capability = "understand"
    variants = ("plain",)
    # lmms-eval chartqa `relaxed_overall` (both splits pooled) is the paper's number, in percent.
    metrics = (
        MetricSpec("acc", "higher", "0-1", "mean", field="correct", headline=True, paper_factor=100),
        MetricSpec("acc/*", "higher", "0-1", "mean over the split", field="correct", where=("split",),
                   paper_factor=100),
        MetricSpec("parse_failure_rate", "lower", "0-1", "mean", field="parse_failure"),
    )

    def test_dir(self) -> Path:
        if self.data_dir is None:
            raise DataError(f"{self.name}: no data dir given (expected the ChartQA folder with test/test_human.json)")
        for candidate in (self.data_dir / "test", self.data_dir):
            if (candidate / f"test_{self.options.splits[0]}.json").exists():
                return candidate
        raise DataError(f"{self.name}: {self.data_dir / 'test' / f'test_{self.options.splits[0]}.json'} not found "
                        f"(expected the official layout test/test_{{human,augmented}}.json + test/png/)")

    def load(self) -> list[Sample]:
        folder = self.test_dir()
        samples = []
        for split in self.options.splits:
            samples += self.load_split(folder / f"test_{split}.json", split)
        return samples

    def load_split(self, path: Path, split: str) -> list[Sample]:
        if not path.exists():
            raise DataError(f"{self.name}: {path} not found")
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

    def target(self, sample: Sample) -> Any:
        """The ChartQA label (stored in each output record)."""
        return sample.data["answer"]

    def request(self, sample: Sample, variant: Variant) -> Request:
        d = sample.data
        options = replace(variant.options,
                          max_new_tokens=variant.options.max_new_tokens or MAX_NEW_TOKENS,
                          temperature=0.0 if variant.options.temperature is None else variant.options.temperature)
        image = read_image(self.test_dir() / "png" / d["imgname"], f"{self.name} {sample.id}, field 'imgname'")
        return Request(sample.id, "understand", build_prompt(d["question"]), images=[image], options=options)

    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        text = output.get("text")
        if not isinstance(text, str):
            return {"split": sample.data["split"], "correct": 0.0, "parse_failure": 1}
        correct = relaxed_correct(text, sample.data["answer"])
        return {"split": sample.data["split"], "correct": float(correct), "parse_failure": 0}

    def paper_deviations(self, samples: list[Sample]) -> list[str]:
        missing = [s for s in SPLITS if s not in self.options.splits]
        return [f"split(s) not run: {', '.join(missing)} (the paper's number pools both)"] if missing else []

    @classmethod
    def make_fixture(cls, root: Path, seed: int = 0) -> Path:
        return make_chartqa_fixture(Path(root), seed)
