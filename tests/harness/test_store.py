import json

import pytest
from PIL import Image

from lavida_bench.api import StoreError
from lavida_bench.store import JsonlWriter, RunStore, read_jsonl, repair_jsonl, safe_name


def test_torn_trailing_line_is_detected_and_repaired(tmp_path):
    path = tmp_path / "x.jsonl"
    with JsonlWriter(path) as w:
        w.write({"id": "a"})
        w.write({"id": "b"})
    with open(path, "ab") as f:
        f.write(b'{"id": "c", "out')  # killed mid-write
    records, torn = read_jsonl(path)
    assert [r["id"] for r in records] == ["a", "b"] and torn
    assert repair_jsonl(path)
    assert path.read_bytes().endswith(b'{"id": "b"}\n')
    assert read_jsonl(path) == ([{"id": "a"}, {"id": "b"}], False)


def test_complete_json_without_newline_counts_as_torn(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}')
    assert read_jsonl(path) == ([{"id": "a"}], True)


def test_corrupt_middle_line_names_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(StoreError, match=r"x\.jsonl: line 2"):
        read_jsonl(path)


def test_ok_record_wins_over_error_and_merge_sorts(tmp_path):
    store = RunStore(tmp_path)
    with JsonlWriter(store.part_path("t", "v", 1)) as w:
        w.write({"id": "b", "status": "error", "error": "boom"})
        w.write({"id": "a", "status": "ok"})
    with JsonlWriter(store.part_path("t", "v", 0)) as w:
        w.write({"id": "b", "status": "ok"})
    assert store.finished_ids("t", "v") == {"a", "b"}
    merged = store.merge("t", "v")
    assert [json.loads(l)["id"] for l in merged.read_text().splitlines()] == ["a", "b"]
    assert not list(store.records_dir("t", "v").glob("*.part-*"))


def test_images_are_written_whole_and_ids_are_safe(tmp_path):
    store = RunStore(tmp_path)
    rel = store.image_relpath("geneval", "plain", "00001/0")
    assert "/" not in rel.split("images/geneval/plain/")[1]
    assert safe_name("a/b") != safe_name("a_b")
    store.save_image(Image.new("RGB", (4, 4), (1, 2, 3)), rel)
    assert Image.open(tmp_path / rel).getpixel((0, 0)) == (1, 2, 3)
    assert not list((tmp_path / "images").rglob(".*tmp*"))


def test_unwritable_output_names_the_path(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(StoreError, match=str(blocked)):
        JsonlWriter(blocked / "sub" / "x.jsonl")
