import json

import pytest
from PIL import Image

from lavida_bench.api import DataError, Options, Sample, Variant
from lavida_bench.tasks.chartqa import ChartQA, relaxed_correct


@pytest.mark.parametrize("pred, target, correct", [
    ("105", "100", True),  # exactly 5% above
    ("95", "100", True),  # exactly 5% below
    ("21", "20", True),  # 1/20 = 5%
    ("105.01", "100", False),
    ("94.9", "100", False),
    ("62%", "0.62", True),  # '%' divides by 100
    ("62%", "62", False),  # ... so a percentage never matches a plain number label
    ("62", "62%", False),
    ("62%", "62%", True),
    ("0", "0", True),  # zero target: string equality
    ("0.0", "0", False),
    ("0.01", "0", False),
    ("Yes", "yes", True),  # case-insensitive
    ("YES", "Yes", True),
    ("14.", "14", True),  # float("14.") == 14.0: a numeric trailing period passes
    ("Yes.", "Yes", False),  # ... a textual one does not
    ("$14", "14", False),
    ("fourteen", "14", False),
])
def test_relaxed_correctness(pred, target, correct):
    assert relaxed_correct(pred, target) is correct


def test_score_and_missing_text(ctx):
    task = ChartQA(None)
    s = Sample("human/00000", {"split": "human", "answer": "42"})
    assert task.score(s, {"text": "43"}, ctx) == {"split": "human", "correct": 1.0, "parse_failure": 0}
    assert task.score(s, {"text": "45"}, ctx) == {"split": "human", "correct": 0.0, "parse_failure": 0}
    assert task.score(s, {"text": None}, ctx) == {"split": "human", "correct": 0.0, "parse_failure": 1}
    assert task.score(s, {}, ctx)["parse_failure"] == 1


def test_aggregate_per_split():
    scores = [{"split": "human", "correct": 1.0, "parse_failure": 0}, {"split": "human", "correct": 1.0, "parse_failure": 0},
              {"split": "augmented", "correct": 0.0, "parse_failure": 1}, {"split": "augmented", "correct": 1.0, "parse_failure": 0}]
    m = ChartQA(None).aggregate(scores)
    assert m["acc"].value == 0.75 and m["acc"].n == 4
    assert m["acc/human"].value == 1.0 and m["acc/augmented"].value == 0.5
    assert m["parse_failure_rate"].value == 0.25


def test_fixture_loads_both_splits(chartqa_dir):
    task = ChartQA(chartqa_dir)
    samples = task.load()
    assert [s.id for s in samples] == [f"{split}/{i:05d}" for split in ("human", "augmented") for i in range(4)]
    req = task.request(samples[0], Variant("plain"))
    assert req.prompt == samples[0].data["question"] + "\nAnswer the question with a single word."
    assert len(req.images) == 1 and req.images[0].mode == "RGB"
    assert req.options.max_new_tokens == 16 and req.options.temperature == 0.0
    assert task.request(samples[0], Variant("t", Options(temperature=0.5))).options.temperature == 0.5
    records = json.loads((chartqa_dir / "test" / "test_human.json").read_text())
    assert set(records[0]) == {"imgname", "query", "label"} and (chartqa_dir / "test" / "png" / records[0]["imgname"]).exists()
    # the test/ folder itself works as a data dir; one split can be selected
    assert len(ChartQA(chartqa_dir / "test", {"splits": ["augmented"]}).load()) == 4


def write_split(folder, records, image=True):
    (folder / "test" / "png").mkdir(parents=True, exist_ok=True)
    if image:
        Image.new("RGB", (8, 8)).save(folder / "test" / "png" / "a.png")
    (folder / "test" / "test_human.json").write_text(json.dumps(records))


GOOD = {"imgname": "a.png", "query": "q?", "label": "1"}


@pytest.mark.parametrize("bad, message", [
    ({"imgname": "a.png", "query": "q?"}, r"record 1, field 'label': expected a string, missing"),
    ({**GOOD, "label": ["1", "2"]}, r"record 1, field 'label': expected a string, a list"),
    ({**GOOD, "imgname": "b.png"}, r"record 1, field 'imgname': .*b\.png not found"),
    ("text", r"record 1: expected an object"),
])
def test_load_errors_name_file_record_and_field(tmp_path, bad, message):
    write_split(tmp_path, [GOOD, bad])
    with pytest.raises(DataError, match=r"test_human\.json: " + message):
        ChartQA(tmp_path, {"splits": ["human"]}).load()


def test_missing_files_and_options(tmp_path):
    with pytest.raises(DataError, match=r"test_human\.json not found"):
        ChartQA(tmp_path).load()
    write_split(tmp_path, {"not": "a list"})
    with pytest.raises(DataError, match="expected a JSON list"):
        ChartQA(tmp_path, {"splits": ["human"]}).load()
    write_split(tmp_path, [GOOD])
    with pytest.raises(DataError, match=r"test_augmented\.json not found"):
        ChartQA(tmp_path).load()
    with pytest.raises(DataError, match=r"tasks\.chartqa\.options\.split: unknown key \(valid: splits\)"):
        ChartQA(tmp_path, {"split": "human"})
    with pytest.raises(DataError, match="subset of"):
        ChartQA(tmp_path, {"splits": ["val"]})
