"""Bad benchmark data: each fault gives a per-sample error record naming the record and field
(the run goes on and counts it), or, for a structurally broken dataset, a refusal that names the
file/record/field before any model time is spent. Uses the tasks' own synthetic fixtures."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from lavida_bench.tasks import TASKS
from lavida_bench.tasks.base import DataError

from lavida_bench.app import execute
from lavida_bench.baselines import ConstantModel
from lavida_bench.protocol import Request, Result
from lavida_bench.store import RunStore
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
    for name in ("chartqa", "refcoco", "mmmu", "geneval", "imgedit"):
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
    counts = outcome.results["chartqa"]["plain"]["counts"]
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
    assert flagged and outcome.results["geneval"]["plain"]["counts"]["scoring_errors"] == len(flagged)
