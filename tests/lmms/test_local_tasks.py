"""The shipped lmms-eval task templates, the helper that points them at local files, and one
in-process lmms-eval run of both tasks through the adapter with scripted answers."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from PIL import Image

from lavida_bench.api import DataError, Request, Result
from lavida_bench.lmms_adapter import LavidaO
from lavida_bench.tasks import lmms_yaml
from lavida_bench.tasks.chartqa import POST_PROMPT, relaxed_correct
from lavida_bench.tasks.mmmu import build_prompt
from tests.lmms.conftest import FILELOCK_HINT, MMMU_IMAGES, filelock_has_api


def pixels(im: Image.Image) -> tuple:
    im = im.convert("RGB")
    return im.size, im.tobytes()


# -- the data layout ---------------------------------------------------------------------------

def test_chartqa_conversion_gives_lmms_lab_rows_with_decodable_images(local_data, tmp_path):
    import datasets

    rows = datasets.load_dataset("parquet", data_files={"test": str(local_data["chartqa_file"])},
                                 cache_dir=str(tmp_path / "hf"))["test"]
    folder = local_data["chartqa_vis_nlp"] / "test"
    human = json.loads((folder / "test_human.json").read_text())
    augmented = json.loads((folder / "test_augmented.json").read_text())
    assert len(rows) == len(human) + len(augmented) == 8
    assert rows["type"] == ["human_test"] * 4 + ["augmented_test"] * 4
    assert rows["question"] == [r["query"] for r in human + augmented]
    assert rows["answer"] == [r["label"] for r in human + augmented]
    first = rows[0]["image"]
    assert isinstance(first, Image.Image)  # the HF Image feature, not a {bytes, path} dict
    with Image.open(folder / "png" / human[0]["imgname"]) as png:
        assert pixels(first) == pixels(png)


def test_with_image_features_marks_only_the_image_columns(local_data):
    import pyarrow.parquet as pq

    assert lmms_yaml.hf_features(local_data["mmmu_raw_file"]) == {}
    features = lmms_yaml.hf_features(local_data["mmmu_file"])
    assert [c for c, f in features.items() if f["_type"] == "Image"] == MMMU_IMAGES
    assert features["options"] == {"dtype": "string", "_type": "Value"}
    before, after = pq.read_table(local_data["mmmu_raw_file"]), pq.read_table(local_data["mmmu_file"])
    assert before.to_pylist() == after.to_pylist()  # cells unchanged


def test_with_image_features_names_a_missing_column(local_data, tmp_path):
    with pytest.raises(DataError, match="no field 'picture'"):
        lmms_yaml.with_image_features(local_data["mmmu_raw_file"], tmp_path / "x.parquet", ["picture"])


# -- writing the task YAMLs ----------------------------------------------------------------------

def test_written_yaml_includes_the_template_and_names_the_files(task_dir, local_data):
    from lmms_eval.utils import load_yaml_config

    config = load_yaml_config(str(task_dir / "lavida_chartqa.yaml"), mode="full")
    assert config["task"] == "lavida_chartqa"
    assert config["dataset_path"] == "parquet"
    assert config["dataset_kwargs"] == {"data_files": {"test": [str(local_data["chartqa_file"])]}}
    assert config["test_split"] == "test"
    assert config["generation_kwargs"]["max_new_tokens"] == 16  # lmms-eval tasks/chartqa/chartqa.yaml
    assert config["lmms_eval_specific_kwargs"]["default"]["post_prompt"] == POST_PROMPT  # same prompt as ours
    from lmms_eval.tasks.chartqa import utils as chartqa_utils

    assert config["process_results"] is chartqa_utils.chartqa_process_results  # lmms-eval's own scoring

    mmmu = load_yaml_config(str(task_dir / "lavida_mmmu_val.yaml"), mode="full")
    assert mmmu["dataset_kwargs"]["data_files"] == {"validation": [str(local_data["mmmu_file"])]}
    assert mmmu["generation_kwargs"] == {"max_new_tokens": 16}  # LaVida-O eval/lmms_eval/tasks/mmmu (vendored 0.3.0)
    assert "doc_to_messages" not in mmmu


def test_task_manager_sees_our_tasks_and_not_the_templates(task_dir):
    manager = lmms_yaml.task_manager(task_dir)
    assert sorted(manager.all_tasks) == ["lavida_chartqa", "lavida_mmmu_val"]
    assert lmms_yaml.task_manager(lmms_yaml.TEMPLATE_DIR).all_tasks == []  # templates alone are no tasks


def test_write_tasks_refuses_plain_image_structs(local_data, tmp_path):
    with pytest.raises(DataError) as err:
        lmms_yaml.write_tasks(tmp_path / "out", {"lavida_mmmu_val": local_data["mmmu_raw_file"]})
    assert str(local_data["mmmu_raw_file"]) in str(err.value)
    assert "'image_1', 'image_2'" in str(err.value) and "not Hugging Face Image features" in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing is written when a check fails


@pytest.mark.parametrize(("task", "key", "message"), [
    ("lavida_chartqa", "mmmu_file", "missing field(s) 'type'"),
    ("lavida_chartqa", "chartqa_vis_nlp", "no test-*.parquet or test.parquet under"),
    ("lavida_mmmu", "mmmu_file", "unknown local task(s) lavida_mmmu"),
])
def test_write_tasks_names_what_is_wrong(local_data, tmp_path, task, key, message):
    with pytest.raises(DataError) as err:
        lmms_yaml.write_tasks(tmp_path / "out", {task: local_data[key]})
    assert message in str(err.value)


def test_write_tasks_names_a_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"lavida_chartqa: .*nowhere does not exist"):
        lmms_yaml.write_tasks(tmp_path / "out", {"lavida_chartqa": tmp_path / "nowhere"})


def test_command_line(local_data, tmp_path, capsys):
    out = tmp_path / "tasks"
    assert lmms_yaml.main(["--out", str(out), f"lavida_chartqa={local_data['chartqa']}"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["lavida_chartqa.yaml"]
    assert f"--include_path {out}" in capsys.readouterr().out
    assert lmms_yaml.main(["--out", str(out), f"lavida_mmmu_val={local_data['mmmu_raw_file']}"]) == 2
    assert "not Hugging Face Image features" in capsys.readouterr().out


# -- lmms-eval end to end, in process, with scripted answers --------------------------------------

class ScriptedPipeline:
    """Answers by looking the (first) image up in a table; records how many images came."""

    def __init__(self, answers: dict[tuple, str]):
        self.answers = answers
        self.n_images: dict[str, int] = {}

    def understand(self, requests: list[Request]) -> list[Result]:
        results = []
        for r in requests:
            self.n_images[self.answers[pixels(r.images[0])]] = len(r.images)
            results.append(Result(text=self.answers[pixels(r.images[0])]))
        return results


def chartqa_script(folder: Path) -> dict[tuple, str]:
    """Hand-picked answers: human 2/4 correct, augmented 4/4 (lmms-eval `relaxed_correctness` rules)."""
    answers = {}
    for split in ("human", "augmented"):
        for i, rec in enumerate(json.loads((folder / f"test_{split}.json").read_text())):
            label = rec["label"]  # even i: a number; odd i: a category letter
            reply = {("human", 0): label,  # exact: correct
                     ("human", 1): "zzz",  # wrong
                     ("human", 2): label + "%",  # "61%" reads as 0.61 vs 61: wrong
                     ("human", 3): label.lower()}.get((split, i), label + ".0" if i % 2 == 0 else label)
            with Image.open(folder / "png" / rec["imgname"]) as png:
                answers[pixels(png)] = reply
    return answers


def mmmu_script(parquet: Path) -> tuple[dict[tuple, str], dict[str, str]]:
    """5 of 6 correct: Art_2 gets a wrong letter; the rest in varied but parseable forms."""
    import io

    import pyarrow.parquet as pq

    answers, ids = {}, {}
    for row in pq.read_table(parquet).to_pylist():
        gold = row["answer"]
        reply = {"validation_Art_2": "A" if gold != "A" else "B",
                 "validation_Physics_1": f"The answer is ({gold})"}.get(row["id"], gold)
        with Image.open(io.BytesIO(row["image_1"]["bytes"])) as im:
            answers[pixels(im)] = reply
        ids[reply] = row["id"]
    return answers, ids


@pytest.fixture
def isolated_datasets_cache(tmp_path, monkeypatch):
    """lmms-eval caches its choice of datasets cache folder; point it at tmp for this test."""
    from lmms_eval.api import task as lmms_task

    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lmms_task._resolve_hf_datasets_cache_dir.cache_clear()
    yield
    lmms_task._resolve_hf_datasets_cache_dir.cache_clear()


def evaluate(model: LavidaO, task_dir: Path, tasks: list[str]) -> dict:
    from lmms_eval.evaluator import simple_evaluate

    if not filelock_has_api():
        pytest.fail(FILELOCK_HINT)
    return simple_evaluate(model=model, tasks=tasks, task_manager=lmms_yaml.task_manager(task_dir),
                           log_samples=True)


@pytest.mark.usefixtures("isolated_datasets_cache")
def test_lmms_eval_scores_chartqa_through_the_adapter(task_dir, local_data):
    model = LavidaO.from_pipeline(ScriptedPipeline(chartqa_script(local_data["chartqa_vis_nlp"] / "test")),
                                  batch_size=3)
    out = evaluate(model, task_dir, ["lavida_chartqa"])
    metrics = out["results"]["lavida_chartqa"]
    assert metrics["relaxed_human_split,none"] == pytest.approx(0.5)
    assert metrics["relaxed_augmented_split,none"] == pytest.approx(1.0)
    assert metrics["relaxed_overall,none"] == pytest.approx(0.75)
    samples = out["samples"]["lavida_chartqa"]
    assert [s["arguments"][0] for s in samples] == [f"{s['doc']['question']}{POST_PROMPT}" for s in samples]
    # our own scorer agrees with lmms-eval's on every sample
    assert [relaxed_correct(s["filtered_resps"][0], s["target"]) for s in samples] == \
           [bool(s["relaxed_overall"]) for s in samples]


@pytest.mark.usefixtures("isolated_datasets_cache")
def test_lmms_eval_scores_mmmu_through_the_adapter(task_dir, local_data):
    answers, ids = mmmu_script(local_data["mmmu_file"])
    pipeline = ScriptedPipeline(answers)
    out = evaluate(LavidaO.from_pipeline(pipeline, batch_size=4), task_dir, ["lavida_mmmu_val"])
    assert out["results"]["lavida_mmmu_val"]["mmmu_acc,none"] == pytest.approx(round(5 / 6, 5))
    by_id = {ids[reply]: n for reply, n in pipeline.n_images.items()}
    assert by_id["validation_Physics_2"] == 2  # its options tag <image 1> and <image 2>
    assert by_id["validation_Math_1"] == 1
    for sample in out["samples"]["lavida_mmmu_val"]:  # lmms-eval's prompt is the one our MMMU task builds
        doc = sample["doc"]
        assert sample["arguments"][0] == build_prompt(doc["question"], ast.literal_eval(doc["options"]),
                                                      doc["question_type"])


def test_from_demo_converts_the_demo_fixtures_in_one_command(tmp_path, capsys):
    """docs/lmms_eval.md's command: the demo's vis-nlp ChartQA and raw MMMU fixtures become
    lmms-lab parquet copies with image features, and the task YAMLs point at them."""
    import yaml

    from lavida_bench.tasks.chartqa import ChartQA
    from lavida_bench.tasks.mmmu import MMMU

    demo_data = tmp_path / "assets" / "data"
    ChartQA.make_fixture(demo_data / "chartqa", seed=0)
    MMMU.make_fixture(demo_data / "mmmu", seed=0)
    out = tmp_path / "lmms_tasks"
    assert lmms_yaml.main(["--out", str(out), "--from-demo", str(demo_data)]) == 0
    assert "--include_path" in capsys.readouterr().out
    for task, split in (("lavida_chartqa", "test"), ("lavida_mmmu_val", "validation")):
        spec = yaml.safe_load((out / f"{task}.yaml").read_text())
        [parquet] = spec["dataset_kwargs"]["data_files"][split]
        assert Path(parquet).is_file() and Path(parquet).is_relative_to(out / "data")


@pytest.mark.parametrize("name", sorted(lmms_yaml.TASKS))
def test_template_metrics_follow_the_task_metric_specs(name):
    assert lmms_yaml.metric_problems(name) == []


def test_a_template_that_departs_from_the_specs_is_caught(tmp_path, monkeypatch):
    text = (lmms_yaml.TEMPLATE_DIR / "chartqa_local.yaml").read_text()
    bad = text.replace("  - metric: relaxed_human_split\n    aggregation: mean\n    higher_is_better: true",
                       "  - metric: relaxed_human_split\n    aggregation: median\n    higher_is_better: false")
    assert bad != text
    (tmp_path / "chartqa_local.yaml").write_text(bad)
    monkeypatch.setattr(lmms_yaml, "TEMPLATE_DIR", tmp_path)
    assert lmms_yaml.metric_problems("lavida_chartqa") == [
        "chartqa_local.yaml: metric 'relaxed_human_split': higher_is_better must be True (chartqa 'acc/*' is higher)",
        "chartqa_local.yaml: metric 'relaxed_human_split': aggregation 'median', but chartqa 'acc/*' is a mean",
    ]
