"""MMMU (validation): multiple-choice and open questions over up to seven images.

Protocol (LaVida-O `eval/lmms_eval/tasks/mmmu/`): lmms-eval's `mmmu_val` with `prompt_type: format` (the vendored
0.3.0 copy in the Lavida-O repo; identical to the MMMU authors' `configs/llava1.5.yaml`):
the question, the lettered options and a fixed instruction; `<image k>` tags stay in the text and
the tagged images are passed in tag order. Answers are extracted with the MMMU authors' rules as
lmms-eval 0.7.3 ships them (`lmms_eval/tasks/_task_utils/mmmu_mcq_utils.py`,
`lmms_eval/tasks/mmmu/utils.py`); a test checks per-sample agreement with those functions.

Where lmms-eval differs from the MMMU authors' code (`mmmu/utils/eval_utils.py`) we follow
lmms-eval, because that is what produced the paper's number:

- a bare letter is found as `"X "` (lmms-eval) rather than `" X "` (MMMU), so "DNA is" matches A;
- lmms-eval adds a third rule, `"X."`, before the content match;
- the random fallback for unparseable multiple-choice replies: MMMU seeds Python's `random` with
  42 at import, lmms-eval uses the global RNG seeded from `--seed`; both depend on the order of
  samples. Ours is `random.Random(seed)` with the seed derived from (run seed, sample id), and the
  seed is recorded in the score, so a fallback is reproducible in any order;
- lmms-eval scores open answers against the dataset's `answer` string as is; the MMMU answer file
  (`answer_dict_val.json`) may hold a list of accepted answers. A JSONL record whose `answer` is a
  JSON list is scored the MMMU way (any of them).

Data layout under the task's data dir: the lmms-lab/MMMU snapshot (`**/{split}-*.parquet`, HF
image structs in `image_1`..`image_7`) or `{split}.jsonl` with the same fields and image paths
relative to the file. Aggregation: accuracy per subject, per discipline and overall, all
instance-weighted (overall = correct / questions), as `calculate_ins_level_acc` does.
"""
from __future__ import annotations

import ast
import json
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from lavida_bench.api import DataError, MetricSpec, Request, Sample, Variant
from lavida_bench.safety import resolve_inside
from lavida_bench.seeds import sample_seed
from lavida_bench.tasks.base import ScoreContext, Task, read_image
from lavida_bench.tasks.files import (
    ParquetImages,
    image_ref,
    read_jsonl,
    read_parquet,
    relative,
    split_files,
)
from lavida_bench.tasks.understanding_fixtures import make_mmmu_fixture

# Prompts: lmms-eval mmmu/_default_template_yaml, `lmms_eval_specific_kwargs.default`.
MC_PROMPT = "Answer with the option's letter from the given choices directly."
OPEN_PROMPT = "Answer the question using a single word or phrase."
# Vendored lmms-eval 0.3.0 generation settings used for Lavida-O (LaVida-O `eval/lmms_eval/tasks/mmmu/`); current
# lmms-eval uses 128 new tokens.
MAX_NEW_TOKENS = 16
N_IMAGE_FIELDS = 7
# Every field the task reads, with the types it accepts (`options` is a Python list literal in
# the HF data, a list in JSONL; `answer` a list where several answers are accepted).
FIELDS: dict[str, tuple[type, ...]] = {"id": (str,), "question": (str,), "options": (str, list),
                                       "answer": (str, list), "question_type": (str,)}
QUESTION_TYPES = ("multiple-choice", "open")

# Disciplines -> subjects: lmms-eval mmmu/utils.py DOMAIN_CAT2SUB_CAT (= MMMU's CAT_SHORT2LONG
# groups, MMMU-Benchmark/MMMU `mmmu/utils/data_utils.py`).
DISCIPLINES: dict[str, tuple[str, ...]] = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": ("Basic_Medical_Science", "Clinical_Medicine",
                            "Diagnostics_and_Laboratory_Medicine", "Pharmacy", "Public_Health"),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": ("Agriculture", "Architecture_and_Engineering", "Computer_Science",
                             "Electronics", "Energy_and_Power", "Materials", "Mechanical_Engineering"),
}
DISCIPLINE_OF = {s: d for d, subjects in DISCIPLINES.items() for s in subjects}
ID_PATTERN = re.compile(r"^(dev|validation|test)_(.+?)_\d+$")  # lmms-eval extract_subset_name


@dataclass(frozen=True)
class MMMUOptions:
    """`split`: dev | validation (test answers are hidden). `max_new_tokens`: answer length."""

    split: str = "validation"
    max_new_tokens: int = MAX_NEW_TOKENS

    def __post_init__(self) -> None:
        if self.split not in ("dev", "validation"):
            raise ValueError(f"split must be 'dev' or 'validation' (test answers are hidden), got {self.split!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")


# -- prompt --------------------------------------------------------------------------------------

def letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


def build_prompt(question: str, options: list[str], question_type: str) -> str:
    """lmms-eval mmmu/utils.py `construct_prompt` with `prompt_type: format`."""
    if question_type == "multiple-choice":
        choices = "\n".join(f"{k}. {opt}" for k, opt in zip(letters(len(options)), options))
        return f"{question}\n{choices}\n\n{MC_PROMPT}"
    return f"{question}\n\n{OPEN_PROMPT}"


def image_fields(prompt: str) -> list[str]:
    """Image columns whose `<image k>` tag occurs in the prompt (question or options), sorted by
    name as lmms-eval's `mmmu_doc_to_visual` does."""
    return sorted({tag.strip("<>").replace(" ", "_") for tag in re.findall(r"<image \d+>", prompt)})


# -- answer extraction: multiple choice ------------------------------------------------------------

# Rules tried in order; each is (name, how a choice letter appears). lmms-eval
# _task_utils/mmmu_mcq_utils.py `parse_mmmu_multi_choice_response`.
LETTER_RULES: tuple[tuple[str, str], ...] = (("bracket", "({})"), ("letter_space", "{} "),
                                             ("letter_period", "{}."))


def parse_multi_choice(response: str, index2ans: Mapping[str, str], rng: random.Random) -> tuple[str, str]:
    """The chosen letter and the rule that chose it ('bracket', 'letter_space', 'letter_period',
    'content' or 'random')."""
    for char in ",.!?;:'":  # stripped one after the other, in this order (as upstream)
        response = response.strip(char)
    padded = f" {response} "
    choices = list(index2ans)
    for rule, form in LETTER_RULES:
        found = [c for c in choices if form.format(c) in padded]
        if found:
            # Several candidates: the last-occurring one. Upstream locates bracketed letters by
            # "(X)" and every other letter rule by " X " (even the "X." rule): kept as is.
            locate = "({})" if rule == "bracket" else " {} "
            return last_occurring(found, [padded.rfind(locate.format(c)) for c in found]), rule
    if len(padded.split()) > 5:  # content match only for longer replies (upstream rule)
        lower = padded.lower()
        found = [c for c in choices if index2ans[c].lower() in lower]
        if found:
            return last_occurring(found, [lower.rfind(index2ans[c].lower()) for c in found]), "content"
    return rng.choice(choices), "random"


def last_occurring(candidates: list[str], positions: list[int]) -> str:
    """The candidate at the largest position; ties go to the first (as numpy argmax)."""
    return candidates[max(range(len(candidates)), key=positions.__getitem__)]


# -- answer extraction: open questions -------------------------------------------------------------

# MMMU eval_utils.py `parse_open_response` / lmms-eval mmmu/utils.py.
KEY_MARKERS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
TRIVIAL = {":", ",", ".", "!", "?", ";", "'"}
NUMBER_PATTERNS = (
    r"-?\b\d{1,3}(?:,\d{3})+\b",  # with thousands separators
    r"-?\d+(?:\.\d+)?[eE][+-]?\d+",  # scientific
    r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])",  # plain
)


def key_subresponses(response: str) -> list[str]:
    """The shortest tail after an answer marker in each line; the whole reply if none."""
    response = response.strip().strip(".").lower()
    pieces = re.split(r"\.\s(?=[A-Z])|\n", response)  # the sentence split never fires after lower()
    keys = []
    for index, piece in enumerate(pieces):
        markers = KEY_MARKERS + (("=",) if index == len(pieces) - 1 else ())
        shortest = ""
        for marker in (m for m in markers if m in piece):
            tail = piece.split(marker)[-1].strip()
            # Upstream replaces an *empty* pick by any later tail, else keeps the shorter one.
            if not shortest or len(tail) < len(shortest):
                shortest = tail
        if shortest and shortest.strip() not in TRIVIAL:
            keys.append(shortest)
    return keys or [response]


def extract_numbers(text: str) -> list[str]:
    """Every number-looking substring, pattern by pattern (upstream order and overlaps kept)."""
    return [m for pattern in NUMBER_PATTERNS for m in re.findall(pattern, text)]


def normalize(text: str) -> list[float | str]:
    """Numbers -> float rounded to 2 decimals; strings lower-cased, a single character padded on
    either side so it cannot match trivially (MMMU `normalize_str`)."""
    text = text.strip()
    try:
        return [round(float(text.replace(",", "")), 2)]
    except ValueError:
        pass
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]


def parse_open(response: str) -> list[float | str]:
    keys = key_subresponses(response)
    candidates = keys + [n for key in keys for n in extract_numbers(key)]
    return list(dict.fromkeys(item for c in candidates for item in normalize(c)))


def open_correct(gold: str | list[str], preds: list[float | str]) -> bool:
    """MMMU `eval_open`: a string prediction containing a gold string, or an equal number."""
    golds = [g for answer in (gold if isinstance(gold, list) else [gold]) for g in normalize(answer)]
    for pred in preds:
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in golds):
                return True
        elif pred in golds:
            return True
    return False


def choice_correct(gold: str | list[str], pred: str) -> bool:
    """MMMU `eval_multi_choice`: exact letter match (any of a gold list)."""
    return pred in gold if isinstance(gold, list) else pred == gold


# -- task --------------------------------------------------------------------------------------------

class MMMU(Task):
    options_schema = MMMUOptions
    version = "1"
    capability = "understand"
    variants = ("plain",)
    # Instance-weighted accuracies (MMMU `calculate_ins_level_acc`: a group's accuracy weighted
    # by its question count is the mean over its questions): overall, per discipline, per subject.
    metrics = (
        MetricSpec("acc", "higher", "0-1", "mean", field="correct", headline=True, paper_factor=100),
        MetricSpec("acc/*", "higher", "0-1", "mean over the discipline or subject", field="correct",
                   where=("discipline", "subject"), paper_factor=100),
        MetricSpec("random_fallback_rate", "lower", "0-1", "mean", field="random_fallback"),
        MetricSpec("parse_failure_rate", "lower", "0-1", "mean", field="parse_failure"),
    )

    def __init__(self, data_dir: str | Path | None, options: Mapping[str, Any] | None = None):
        super().__init__(data_dir, options)
        self._images = ParquetImages()

    def load(self) -> list[Sample]:
        if self.data_dir is None or not self.data_dir.is_dir():
            raise DataError(f"{self.name}: data dir {self.data_dir} does not exist (expected "
                            f"**/{self.options.split}-*.parquet or {self.options.split}.jsonl)")
        files = split_files(self.data_dir, self.options.split, self.name)
        if not files:
            raise DataError(f"{self.name}: no {self.options.split}-*.parquet under {self.data_dir} "
                            f"and no {self.data_dir / (self.options.split + '.jsonl')}")
        samples = []
        for path in files:
            samples += self.load_file(path)
        return sorted(samples, key=lambda s: s.id)

    def load_file(self, path: Path) -> list[Sample]:
        columns = list(FIELDS) + [f"image_{k}" for k in range(1, N_IMAGE_FIELDS + 1)]
        if path.suffix == ".parquet":
            rows = read_parquet(path, columns)
        else:
            rows = read_jsonl(path)
        return [self.sample(path, i, row) for i, row in enumerate(rows)]

    def sample(self, path: Path, index: int, row: Any) -> Sample:
        where = f"{path}: record {index}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected an object")
        for key, types in FIELDS.items():
            if row.get(key) is None:
                raise DataError(f"{where}: missing field {key!r}")
            if not isinstance(row[key], types):
                expected = " or a ".join("string" if t is str else "list" for t in types)
                raise DataError(f"{where}, field {key!r}: expected a {expected}, got a {type(row[key]).__name__}")
        where = f"{path}: record {index} (id {row['id']!r})"
        match = ID_PATTERN.match(str(row["id"]))
        if not match or match.group(2) not in DISCIPLINE_OF:
            raise DataError(f"{where}, field 'id': expected '<split>_<Subject>_<n>' with one of the "
                            f"30 MMMU subjects")
        qtype = row["question_type"]
        if qtype not in QUESTION_TYPES:
            raise DataError(f"{where}, field 'question_type': expected one of {QUESTION_TYPES}, got {qtype!r}")
        options = parse_option_list(row["options"], f"{where}, field 'options'")
        answer = row["answer"]
        if not (isinstance(answer, str) or (isinstance(answer, list) and all(isinstance(a, str) for a in answer))):
            raise DataError(f"{where}, field 'answer': expected a string or a list of strings")
        if qtype == "multiple-choice":
            if len(options) < 2:
                raise DataError(f"{where}, field 'options': a multiple-choice question needs >= 2 options")
            bad = [a for a in (answer if isinstance(answer, list) else [answer]) if a not in letters(len(options))]
            if bad:
                raise DataError(f"{where}, field 'answer': {bad[0]!r} is not an option letter")
        prompt = build_prompt(row["question"], options, qtype)
        images = []
        for name in image_fields(prompt):
            if name not in row or name not in {f"image_{k}" for k in range(1, N_IMAGE_FIELDS + 1)}:
                raise DataError(f"{where}: the prompt names <{name.replace('_', ' ')}> but there is no field {name!r}")
            ref = image_ref(row[name], f"{where}, field {name!r}")
            if ref is None:
                raise DataError(f"{where}, field {name!r}: the prompt names this image but it is empty")
            images.append({"file": relative(resolve_inside(path.parent, ref["path"], f"{where}, field {name!r}"),
                                            self.data_dir.resolve()), "column": name}
                          if "path" in ref else
                          {"parquet": relative(path, self.data_dir), "row": index, "column": name})
        data = {"id": row["id"], "subject": match.group(2), "discipline": DISCIPLINE_OF[match.group(2)],
                "question": row["question"], "options": options, "question_type": qtype,
                "answer": answer, "images": images}
        return Sample(str(row["id"]), data)

    def target(self, sample: Sample) -> Any:
        """The answer letter (or the accepted open answers) (stored in each output record)."""
        return sample.data["answer"]

    def request(self, sample: Sample, variant: Variant) -> Request:
        d = sample.data
        options = replace(variant.options,
                          max_new_tokens=variant.options.max_new_tokens or self.options.max_new_tokens,
                          temperature=0.0 if variant.options.temperature is None else variant.options.temperature)
        images = [self.image(sample.id, ref) for ref in d["images"]]
        return Request(sample.id, "understand", build_prompt(d["question"], d["options"], d["question_type"]),
                       images=images, options=options)

    def image(self, sample_id: str, ref: Mapping[str, Any]):
        if ref.get("file"):
            return read_image(self.data_dir / ref["file"], f"{self.name} {sample_id}, field {ref['column']!r}")
        return self._images.read(self.data_dir / ref["parquet"], int(ref["row"]), ref["column"])

    def score(self, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
        d = sample.data
        base = {"subject": d["subject"], "discipline": d["discipline"], "question_type": d["question_type"]}
        text = output.get("text")
        if not isinstance(text, str):  # no reply at all: wrong, counted; no random guess
            return {**base, "correct": 0.0, "pred": "", "rule": "none", "random_fallback": 0,
                    "fallback_seed": -1, "parse_failure": 1}
        if d["question_type"] == "multiple-choice":
            seed = sample_seed(ctx.seed, self.name, sample.id)
            index2ans = dict(zip(letters(len(d["options"])), d["options"]))
            pred, rule = parse_multi_choice(text, index2ans, random.Random(seed))
            correct = choice_correct(d["answer"], pred)
            return {**base, "correct": float(correct), "pred": pred, "rule": rule,
                    "random_fallback": int(rule == "random"), "fallback_seed": seed if rule == "random" else -1,
                    "parse_failure": 0}
        preds = parse_open(text)
        return {**base, "correct": float(open_correct(d["answer"], preds)),
                "pred": json.dumps(sorted(map(str, preds))), "rule": "open", "random_fallback": 0,
                "fallback_seed": -1, "parse_failure": 0}

    def paper_deviations(self, samples: list[Sample]) -> list[str]:
        return [] if self.options.split == "validation" else [f"split {self.options.split!r} (the paper reports validation)"]

    @classmethod
    def make_fixture(cls, root: Path, seed: int = 0) -> Path:
        return make_mmmu_fixture(Path(root), seed)


def parse_option_list(value: Any, where: str) -> list[str]:
    """`options` is a Python-literal list in a string in the HF data (lmms-lab/MMMU); a real
    list is accepted too (JSONL form)."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError) as err:
            raise DataError(f"{where}: not a Python list literal ({err})") from err
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: expected a list of strings")
    if len(value) > 26:
        raise DataError(f"{where}: {len(value)} options; at most 26 letters")
    return value
