"""Bad benchmark data: each fault gives a per-sample error record naming the record and field
(the run goes on and counts it), or, for a structurally broken dataset, a refusal that names the
file/record/field before any model time is spent. Uses the tasks' own synthetic fixtures."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lavida_bench.api import DataError, Request, Result
from lavida_bench.app import execute
from lavida_bench.baselines import ConstantModel
from lavida_bench.store import RunStore
from lavida_bench.tasks import TASKS
from tests.reliability.fakes import make_config

STANDINS = tuple(f"backends.{b}=standin" for b in ("detector", "color", "vqa", "inception", "judge"))


class CountingModel(ConstantModel):
    """The constant baseline, counting the requests it answers (model time spent)."""

    def __init__(self) -> None:
        self.requests = 0

    def _count(self, requests: list[Request], answer: Any) -> list[Result]:
        self.requests += len(requests)
        return answer(requests)

    def understand(self, requests: list[Request]) -> list[Result]:
        return self._count(requests, super().understand)

    def ground(self, requests: list[Request]) -> list[Result]:
        return self._count(requests, super().ground)

    def generate(self, requests: list[Request]) -> list[Result]:
        return self._count(requests, super().generate)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fixtures")
    for name in ("chartqa", "refcoco", "mmmu", "geneval", "imgedit", "dpg_bench", "fid30k"):
        TASKS.get(name).make_fixture(root / name, seed=0)
    return root


@pytest.fixture()
def copy_of(fixtures: Path, tmp_path: Path):
    def copy(name: str) -> Path:
        return Path(shutil.copytree(fixtures / name, tmp_path / "data" / name))
    return copy


def run(tmp_path: Path, task: str, data: Path, *extra: str) -> tuple[Any, CountingModel]:
    model = CountingModel()
    cfg = make_config(tmp_path / "run", {task: data}, extra=(*STANDINS, *extra))
    return execute(cfg, model=model, progress=False), model


def refused(tmp_path: Path, task: str, data: Path, *needles: str, extra: tuple[str, ...] = ()) -> str:
    """The run is refused with a DataError naming every needle, and no request reached the model."""
    model = CountingModel()
    with pytest.raises(DataError) as caught:
        execute(make_config(tmp_path / "run", {task: data}, extra=(*STANDINS, *extra)), model=model, progress=False)
    message = str(caught.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not named in: {message}"
    assert model.requests == 0
    return message


# --- ChartQA: JSON records naming PNG files ------------------------------------------------------

def chartqa_records(data: Path) -> tuple[Path, list[dict[str, Any]]]:
    path = data / "test" / "test_human.json"
    return path, json.loads(path.read_text())


def test_truncated_image_is_a_per_sample_error(tmp_path, copy_of):
    data = copy_of("chartqa")
    png = data / "test/png/human_001.png"
    png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    outcome, model = run(tmp_path, "chartqa", data)
    records = RunStore(tmp_path / "run").outputs("chartqa", "plain")
    bad = records["human/00001"]
    assert bad["status"] == "error" and bad["stage"] == "request"
    assert "human/00001" in bad["error"] and "'imgname'" in bad["error"] and "truncated" in bad["error"]
    assert sorted(i for i, r in records.items() if r["status"] == "ok") == sorted(set(records) - {"human/00001"})
    counts = outcome.results["tasks"]["chartqa"]["plain"]["counts"]
    assert counts["generation_errors"] == 1 and counts["scored"] == counts["samples"] - 1
    assert outcome.errors == 1
    again, model = run(tmp_path, "chartqa", data)  # a resume retries the failed sample, and only it
    assert again.errors == 1 and model.requests == 0  # (it fails again in `request`, before the model)


def test_corrupt_image_bytes(tmp_path, copy_of):
    data = copy_of("chartqa")
    (data / "test/png/human_002.png").write_bytes(b"not a png at all")
    outcome, _ = run(tmp_path, "chartqa", data)
    bad = RunStore(tmp_path / "run").outputs("chartqa", "plain")["human/00002"]
    assert bad["status"] == "error" and "'imgname'" in bad["error"] and "cannot decode image" in bad["error"]
    assert outcome.errors == 1


def test_missing_image_file_is_refused_before_model_time(tmp_path, copy_of):
    data = copy_of("chartqa")
    (data / "test/png/human_000.png").unlink()
    refused(tmp_path, "chartqa", data, "test_human.json", "record 0", "'imgname'", "human_000.png", "not found")


@pytest.mark.parametrize("field, value, expected", [
    ("query", None, "missing"),
    ("label", 61, "a int"),
    ("imgname", ["human_000.png"], "a list"),
])
def test_missing_or_wrongly_typed_field(tmp_path, copy_of, field, value, expected):
    data = copy_of("chartqa")
    path, records = chartqa_records(data)
    if value is None:
        del records[1][field]
    else:
        records[1][field] = value
    path.write_text(json.dumps(records))
    refused(tmp_path, "chartqa", data, str(path), "record 1", f"field {field!r}", expected)


def test_non_utf8_text(tmp_path, copy_of):
    data = copy_of("chartqa")
    path, _ = chartqa_records(data)
    path.write_bytes(path.read_bytes().replace(b"What", b"Wh\xff\xfet", 1))
    refused(tmp_path, "chartqa", data, str(path))


def test_empty_dataset(tmp_path, copy_of):
    data = copy_of("chartqa")
    for split in ("human", "augmented"):
        (data / f"test/test_{split}.json").write_text("[]")
    refused(tmp_path, "chartqa", data, "chartqa", "no records")


@pytest.mark.parametrize("escape", ["../../../outside.png", "ABSOLUTE"])
def test_chartqa_image_path_escaping_the_dataset_is_refused(tmp_path, copy_of, escape):
    data = copy_of("chartqa")
    outside = tmp_path / "data" / "outside.png"
    shutil.copy(data / "test/png/human_000.png", outside)
    path, records = chartqa_records(data)
    records[0]["imgname"] = str(outside) if escape == "ABSOLUTE" else escape
    assert (data / "test/png" / records[0]["imgname"]).resolve() == outside.resolve()  # it really points there
    path.write_text(json.dumps(records))
    refused(tmp_path, "chartqa", data, str(path), "record 0", "'imgname'")


# --- RefCOCO (jsonl form), MMMU, GenEval, ImgEdit ---------------------------------------------------

@pytest.mark.parametrize("escape", ["../../outside.png", "ABSOLUTE"])
def test_refcoco_image_path_escaping_the_dataset_is_refused(tmp_path, copy_of, escape):
    data = copy_of("refcoco")
    path = data / "RefCOCOg" / "test.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    outside = tmp_path / "data" / "outside.png"
    shutil.copy(path.parent / lines[0]["image"], outside)
    lines[0]["image"] = str(outside) if escape == "ABSOLUTE" else escape
    assert (path.parent / lines[0]["image"]).resolve() == outside.resolve()
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    refused(tmp_path, "refcoco", data, str(path), "line 1", "'image'", extra=("tasks.refcoco.variants=[steps1]",))


def test_imgedit_source_path_escaping_the_dataset_is_refused(tmp_path, copy_of):
    data = copy_of("imgedit")
    path = data / "singleturn.json"
    items = json.loads(path.read_text())
    first = min(items)
    for escape, needle in (("../outside.jpg", "escapes"), ("/etc/hostname", "absolute path")):
        items[first]["id"] = escape
        path.write_text(json.dumps(items))
        refused(tmp_path, "imgedit", data, str(path), f"record {first!r}", "'id'", needle,
                extra=("tasks.imgedit.variants=[plain]",))


def test_duplicate_ids_are_refused_before_model_time(tmp_path, copy_of):
    import pyarrow.parquet as pq

    data = copy_of("mmmu")
    shard = next(data.rglob("*.parquet"))
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[1]["id"] = rows[0]["id"]
    pq.write_table(table.from_pylist(rows, schema=table.schema), shard)
    refused(tmp_path, "mmmu", data, "duplicate sample id", repr(rows[0]["id"]))


def test_geneval_non_utf8_metadata(tmp_path, copy_of):
    data = copy_of("geneval")
    path = data / "evaluation_metadata.jsonl"
    path.write_bytes(path.read_bytes().replace(b"circle", b"circ\xffe", 1))
    refused(tmp_path, "geneval", data, str(path), "line 1")


def test_geneval_unknown_object_class(tmp_path, copy_of):
    data = copy_of("geneval")
    path = data / "evaluation_metadata.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[0]["include"][0]["class"] = "unicorn"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    try:
        outcome, _ = run(tmp_path, "geneval", data, "tasks.geneval.variants=[plain]")
    except DataError as err:  # a refusal is acceptable if it names the record, field and class
        assert "line 1" in str(err) and "'class'" in str(err) and "unicorn" in str(err)
        return
    scores = RunStore(tmp_path / "run").scores("geneval", "plain")
    flagged = [s for s in scores.values() if s["status"] == "error" and "unicorn" in s["error"]]
    assert flagged and outcome.results["tasks"]["geneval"]["plain"]["counts"]["scoring_errors"] == len(flagged)


# --- paths read from data: every task, one containment helper (safety.resolve_inside) ------------

def parquet_rows(shard: Path) -> tuple[Any, list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    table = pq.read_table(shard)
    return table, table.to_pylist()


@pytest.mark.parametrize("escape", ["../../../outside.png", "ABSOLUTE"])
def test_refcoco_parquet_image_path_escaping_the_dataset_is_never_read(tmp_path, copy_of, escape):
    import pyarrow.parquet as pq

    data = copy_of("refcoco")
    shard = next((data / "RefCOCO").rglob("val-*.parquet"))
    outside = tmp_path / "data" / "outside.png"
    table, rows = parquet_rows(shard)
    outside.write_bytes(rows[0]["image"]["bytes"])
    rows[0]["image"] = {"bytes": None, "path": str(outside) if escape == "ABSOLUTE" else escape}
    assert (shard.parent / rows[0]["image"]["path"]).resolve() == outside.resolve()  # it really points there
    pq.write_table(table.from_pylist(rows, schema=table.schema), shard)
    outcome, model = run(tmp_path, "refcoco", data, "tasks.refcoco.variants=[steps1]",
                         "tasks.refcoco.options.splits=[refcoco/val]")
    records = RunStore(tmp_path / "run").outputs("refcoco", "steps1")
    bad = [r for r in records.values() if r["status"] == "error"]
    assert bad and all(r["stage"] == "request" and "'image'" in r["error"] and str(shard) in r["error"]
                       for r in bad)
    assert outcome.errors == len(bad) and model.requests == len(records) - len(bad)


def test_dpg_prompt_file_symlinked_outside_the_dataset_is_refused(tmp_path, copy_of):
    data = copy_of("dpg_bench")
    prompt = min((data / "prompts").glob("*.txt"))
    outside = tmp_path / "data" / "secret.txt"
    outside.write_text("the contents of a file outside the dataset")
    prompt.unlink()
    prompt.symlink_to(outside)
    refused(tmp_path, "dpg_bench", data, str(prompt), "escapes", extra=("tasks.dpg_bench.variants=[plain]",))


@pytest.mark.parametrize("where", ["category", "missing image"])
def test_fid_reference_problems_are_found_at_load(tmp_path, copy_of, where):
    data = copy_of("fid30k")
    meta_path = data / "meta_data.json"
    meta = json.loads(meta_path.read_text())
    first = min(meta)
    if where == "category":
        meta[first]["category"] = "../../outside"
        meta_path.write_text(json.dumps(meta))
        needles = (str(meta_path), repr(first), "'category'", "escapes")
    else:
        (data / "mjhq30k_imgs" / meta[first]["category"] / f"{first}.jpg").unlink()
        needles = (str(meta_path), repr(first), f"{first}.jpg", "not found")
    refused(tmp_path, "fid30k", data, *needles, extra=("tasks.fid30k.variants=[plain]",))


# --- text files that are not UTF-8: a refusal naming the file, exit 2 at the CLI -----------------

def spoil_utf8(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[:2] + b"\xff\xfe" + raw[2:])


@pytest.mark.parametrize("task, relpath", [
    ("imgedit", "singleturn.json"),
    ("imgedit", "prompts.json"),
    ("dpg_bench", "dpg_bench.csv"),
    ("dpg_bench", "PROMPT"),
    ("fid30k", "meta_data.json"),
])
def test_non_utf8_benchmark_file_is_refused_naming_it(tmp_path, copy_of, task, relpath):
    data = copy_of(task)
    path = min((data / "prompts").glob("*.txt")) if relpath == "PROMPT" else data / relpath
    spoil_utf8(path)
    refused(tmp_path, task, data, str(path), "UTF-8", extra=(f"tasks.{task}.variants=[plain]",))


def test_bad_data_exits_2_without_a_traceback(tmp_path, copy_of, capsys):
    from lavida_bench.cli import main

    data = copy_of("fid30k")
    spoil_utf8(data / "meta_data.json")
    code = main(["run", f"output={tmp_path / 'run'}", f"tasks.fid30k.data={data}", "model.kind=constant",
                 "tasks.fid30k.variants=[plain]", *STANDINS])
    err = capsys.readouterr().err
    assert code == 2 and str(data / "meta_data.json") in err and "Traceback" not in err


# --- MMMU: every field the task reads is type-checked ---------------------------------------------

@pytest.mark.parametrize("field, value", [("question", ["a", "list"]), ("question", 42), ("id", 7),
                                          ("question_type", ["open"]), ("options", 3), ("answer", 1)])
def test_mmmu_field_of_the_wrong_type_is_refused(tmp_path, field, value):
    data = tmp_path / "data" / "mmmu"  # the JSONL form, where any type can be written
    data.mkdir(parents=True)
    (data / "a.png").write_bytes(tiny_png())
    row = {"id": "validation_Art_1", "question": "Which colour? <image 1>", "options": "['red', 'blue']",
           "answer": "A", "question_type": "multiple-choice", "image_1": "a.png"}
    path = data / "validation.jsonl"
    path.write_text(json.dumps(row) + "\n")
    assert TASKS.get("mmmu")(data).load()  # the record is sound as written
    path.write_text(json.dumps({**row, field: value}) + "\n")
    refused(tmp_path, "mmmu", data, str(path), "record 0", f"field {field!r}")


def tiny_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


# --- input images over the pixel limit ------------------------------------------------------------

def test_image_over_the_pixel_limit_is_a_per_sample_error_naming_the_field(tmp_path, copy_of):
    from PIL import Image

    from lavida_bench.tasks.base import MAX_INPUT_PIXELS

    data = copy_of("chartqa")
    big = data / "test/png/human_001.png"
    Image.new("1", (MAX_INPUT_PIXELS // 1000 + 1, 1000)).save(big)  # 1 bit per pixel: small file
    outcome, _ = run(tmp_path, "chartqa", data)
    bad = RunStore(tmp_path / "run").outputs("chartqa", "plain")["human/00001"]
    assert bad["status"] == "error" and "'imgname'" in bad["error"] and "pixels" in bad["error"]
    assert outcome.errors == 1
