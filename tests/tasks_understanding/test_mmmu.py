import json
import random

import pytest
from PIL import Image

from lavida_bench.api import DataError, Options, Sample, Variant
from lavida_bench.seeds import sample_seed
from lavida_bench.tasks.mmmu import MMMU, build_prompt, parse_multi_choice, parse_open

OPTIONS = {"A": "apple pie", "B": "banana split", "C": "cherry tart", "D": "DNA"}


def never(*_):
    raise AssertionError("random fallback must not be used")


class NoRandom(random.Random):
    choice = never


# -- multiple choice: one case per rule ------------------------------------------------------------

@pytest.mark.parametrize("reply, letter, rule", [
    ("(B)", "B", "bracket"),
    ("The answer is (A) not (C)", "C", "bracket"),  # several: the last one
    ("B", "B", "letter_space"),
    ("B.", "B", "letter_space"),  # trailing period stripped first
    ("'C'!", "C", "letter_space"),
    ("Answer: C", "C", "letter_space"),
    ("DNA is the answer", "A", "letter_space"),  # lmms-eval's "X " rule: "DNA " contains "A "
    ("C.5", "C", "letter_period"),
    ("A.x B.y", "A", "letter_period"),  # both located by " X " (absent): tie -> first, as upstream
    ("I think it must be the banana split", "B", "content"),
    ("not the apple pie but the cherry tart please", "C", "content"),  # the last-occurring option text
])
def test_multiple_choice_rules(reply, letter, rule):
    assert parse_multi_choice(reply, OPTIONS, NoRandom()) == (letter, rule)


@pytest.mark.parametrize("reply", ["I have no idea", "banana split", ""])
def test_no_match_falls_back_to_the_seeded_rng(reply):
    # short replies never use the content rule (more than 5 words needed)
    letter, rule = parse_multi_choice(reply, OPTIONS, random.Random(7))
    assert rule == "random" and letter == random.Random(7).choice("ABCD")


def mc_sample(answer="B", sid="validation_Art_3"):
    return Sample(sid, {"subject": "Art", "discipline": "Art and Design", "question_type": "multiple-choice",
                        "options": list(OPTIONS.values()), "answer": answer})


def test_random_fallback_is_seeded_by_run_seed_and_id_and_recorded(ctx):
    task = MMMU(None)
    out = task.score(mc_sample(), {"text": "no idea"}, ctx)
    seed = sample_seed(0, "mmmu", "validation_Art_3")
    assert out["random_fallback"] == 1 and out["fallback_seed"] == seed and out["rule"] == "random"
    assert out["pred"] == random.Random(seed).choice("ABCD")
    assert out["correct"] == float(out["pred"] == "B")
    assert task.score(mc_sample(), {"text": "no idea"}, ctx) == out  # reproducible
    ctx.seed = 1
    assert task.score(mc_sample(), {"text": "no idea"}, ctx)["fallback_seed"] == sample_seed(1, "mmmu", "validation_Art_3")


def test_multiple_choice_score_and_missing_text(ctx):
    task = MMMU(None)
    assert task.score(mc_sample(), {"text": "(B)"}, ctx) == {
        "subject": "Art", "discipline": "Art and Design", "question_type": "multiple-choice", "correct": 1.0,
        "pred": "B", "rule": "bracket", "random_fallback": 0, "fallback_seed": -1, "parse_failure": 0}
    assert task.score(mc_sample(["A", "B"]), {"text": "B"}, ctx)["correct"] == 1.0  # gold list
    missing = task.score(mc_sample(), {"text": None}, ctx)
    assert missing["correct"] == 0.0 and missing["parse_failure"] == 1 and missing["random_fallback"] == 0


# -- open questions ------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, parsed", [
    ("The answer is 3,000.", [3000.0, 0.0]),  # the plain-number pattern also finds "000" (upstream)
    ("x = 2.5", [2.5]),  # "=" counts in the last line
    ("Red", ["red"]),
    ("It is dark red", ["dark red"]),
    ("1.5e3", [1500.0, 1.0, 3.0]),  # the plain pattern also finds "1" and "3" (upstream)
    ("so the answer is \nblue", ["is"]),  # an empty pick is replaced by any later tail (upstream)
])
def test_open_parsing(reply, parsed):
    assert sorted(parse_open(reply), key=str) == sorted(parsed, key=str)


def open_sample(answer):
    return Sample("validation_Math_9", {"subject": "Math", "discipline": "Science", "question_type": "open",
                                        "options": [], "answer": answer})


@pytest.mark.parametrize("reply, answer, correct", [
    ("The answer is 3,000.", "3000", 1.0),
    ("x = 2.5", "2.50", 1.0),  # numbers compared after rounding to 2 decimals
    ("12", "13", 0.0),
    ("It is dark red", "red", 1.0),  # gold string contained in the prediction
    ("red", "r", 0.0),  # a one-letter gold must stand alone: " r" / "r "
    ("blue", ["green", "Blue"], 1.0),  # any of a gold list
])
def test_open_scores(reply, answer, correct, ctx):
    out = MMMU(None).score(open_sample(answer), {"text": reply}, ctx)
    assert out["correct"] == correct and out["rule"] == "open" and out["parse_failure"] == 0


# -- prompt, aggregation ---------------------------------------------------------------------------

def test_prompt_format():
    assert build_prompt("<image 1> Q?", ["x", "y"], "multiple-choice") == (
        "<image 1> Q?\nA. x\nB. y\n\nAnswer with the option's letter from the given choices directly.")
    assert build_prompt("Q?", [], "open") == "Q?\n\nAnswer the question using a single word or phrase."


def test_aggregate_is_instance_weighted():
    def s(subject, discipline, correct, fallback=0):
        return {"subject": subject, "discipline": discipline, "correct": correct, "random_fallback": fallback,
                "parse_failure": 0}
    scores = [s("Art", "Art and Design", 1.0), s("Art", "Art and Design", 1.0), s("Physics", "Science", 1.0, 1),
              s("Physics", "Science", 0.0), s("Math", "Science", 0.0)]
    m = MMMU(None).aggregate(scores)
    assert m["acc"].value == pytest.approx(3 / 5)  # not the subject macro (1 + 0.5 + 0) / 3
    assert m["acc/Science"].value == pytest.approx(1 / 3) and m["acc/Science"].n == 3  # not (0.5 + 0) / 2
    assert m["acc/Art and Design"].value == 1.0 and m["acc/Physics"].value == 0.5 and m["acc/Math"].value == 0.0
    assert m["random_fallback_rate"].value == pytest.approx(1 / 5)
    assert "acc/Business" not in m


# -- fixture and loading --------------------------------------------------------------------------

def test_fixture_loads(mmmu_dir):
    task = MMMU(mmmu_dir)
    samples = task.load()
    assert [s.id for s in samples] == ["validation_Art_1", "validation_Art_2", "validation_Math_1",
                                       "validation_Math_2", "validation_Physics_1", "validation_Physics_2"]
    by_id = {s.id: s for s in samples}
    two = task.request(by_id["validation_Physics_2"], Variant("plain"))
    assert len(two.images) == 2 and two.images[0].size == (96, 96) and two.images[1].size == (128, 80)
    assert "B. <image 2>" in two.prompt and "<image>" not in two.prompt
    assert two.options.max_new_tokens == 16 and two.options.temperature == 0.0
    assert by_id["validation_Math_1"].data["question_type"] == "open"
    assert task.request(by_id["validation_Math_1"], Variant("plain", Options(max_new_tokens=32))).options.max_new_tokens == 32


def test_fixture_answers_follow_the_drawing(mmmu_dir):
    """The counting items' gold letter is the number of red circles drawn."""
    import numpy as np

    task = MMMU(mmmu_dir)
    for s in task.load():
        if "red circles" in s.data["question"]:
            im = np.asarray(task.request(s, Variant("plain")).images[0])
            row = im[15]  # the circles' centre row (y 8..21)
            red = np.all(row == (220, 30, 30), axis=1).astype(int)
            runs = int(np.sum(np.diff(np.concatenate([[0], red])) == 1))
            assert s.data["options"][ord(s.data["answer"]) - ord("A")] == str(runs)


def write_records(folder, records, image=True):
    folder.mkdir(parents=True, exist_ok=True)
    if image:
        Image.new("RGB", (8, 8)).save(folder / "a.png")
    (folder / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


GOOD = {"id": "validation_Art_1", "question": "<image 1> Q?", "options": "['x', 'y']", "answer": "A",
        "question_type": "multiple-choice", "image_1": "a.png"}


def test_jsonl_form_loads_with_image_paths(tmp_path):
    write_records(tmp_path, [GOOD, {**GOOD, "id": "validation_Art_2", "options": ["p", "q"], "answer": ["A", "B"]}])
    task = MMMU(tmp_path)
    samples = task.load()
    assert [s.data["options"] for s in samples] == [["x", "y"], ["p", "q"]]
    assert task.request(samples[0], Variant("plain")).images[0].size == (8, 8)


@pytest.mark.parametrize("change, message", [
    ({"question": None}, r"missing field 'question'"),
    ({"id": "validation_Cooking_1"}, r"\(id 'validation_Cooking_1'\), field 'id'"),
    ({"question_type": "essay"}, r"field 'question_type'"),
    ({"options": "['x', "}, r"field 'options': not a Python list literal"),
    ({"options": "['x']"}, r"field 'options'.*>= 2 options"),
    ({"answer": "C"}, r"field 'answer': 'C' is not an option letter"),
    ({"question": "<image 2> Q?"}, r"no field 'image_2'"),
    ({"image_1": None}, r"field 'image_1'.*empty"),
])
def test_load_errors_name_file_record_and_field(tmp_path, change, message):
    write_records(tmp_path, [GOOD, {**GOOD, "id": "validation_Art_2", **change}])
    with pytest.raises(DataError, match=r"validation\.jsonl: record 1.*" + message):
        MMMU(tmp_path).load()


def test_missing_data_and_bad_options(tmp_path):
    with pytest.raises(DataError, match="no validation-"):
        MMMU(tmp_path).load()
    with pytest.raises(DataError, match=r"tasks\.mmmu\.options\.spilt: unknown key \(valid: split, max_new_tokens\)"):
        MMMU(tmp_path, {"spilt": "dev"})
    with pytest.raises(DataError, match="test answers are hidden"):
        MMMU(tmp_path, {"split": "test"})
