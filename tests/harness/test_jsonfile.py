"""The one JSON-file reader (lavida_bench/jsonfile.py): every fault is refused with the caller's
error class, in one family of messages that names the file and the fault."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from lavida_bench.api import CheckpointError, DataError, StoreError
from lavida_bench.jsonfile import json_type, read_json_file
from lavida_bench.store import read_json as store_read_json

ERRORS = [CheckpointError, DataError, StoreError]


def write(tmp_path: Path, data: bytes | str, name: str = "f.json") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def refusal(path: Path, error: type[Exception] = DataError, **facts: object) -> str:
    with pytest.raises(error) as caught:
        read_json_file(path, error, **facts)
    assert type(caught.value) is error  # the caller's class itself, never a wrapper or a subclass
    return str(caught.value)


def test_good_file_is_parsed(tmp_path):
    path = write(tmp_path, '{"a": [1, 2.5, null, "NaN"]}')
    assert read_json_file(path, DataError, strict=True, want_object=True) == {"a": [1, 2.5, None, "NaN"]}
    assert read_json_file(write(tmp_path, "[1]"), DataError) == [1]


@pytest.mark.parametrize("error", ERRORS)
def test_missing(tmp_path, error):
    path = tmp_path / "absent.json"
    assert refusal(path, error, expected="the release's config.json") == \
        f"{path}: missing; expected the release's config.json"
    assert refusal(path, error) == f"{path}: missing"  # no "expected" unless the caller said


@pytest.mark.parametrize("error", ERRORS)
def test_unreadable_names_the_os_reason(tmp_path, error):
    folder = tmp_path / "a_folder.json"
    folder.mkdir()
    assert refusal(folder, error, expected="X") == f"{folder}: cannot be read (Is a directory); expected X"


@pytest.mark.parametrize("error", ERRORS)
def test_not_utf8_names_the_byte_offset(tmp_path, error):
    path = write(tmp_path, b'{"a\xff": 1}')
    assert refusal(path, error, expected="X") == f"{path}: not UTF-8 text (bad byte at offset 3); expected X"


@pytest.mark.parametrize("error", ERRORS)
def test_invalid_json_names_line_and_column(tmp_path, error):
    path = write(tmp_path, '{\n  "a": ,\n}')
    assert refusal(path, error, expected="X") == \
        f"{path}: not valid JSON (Expecting value at line 2 column 8); expected X"


def test_truncated_and_empty_files_are_invalid_json(tmp_path):
    assert "not valid JSON (Expecting ',' delimiter at line 1 column 9)" in refusal(write(tmp_path, '{"a": 1 '))
    assert "not valid JSON (Expecting value at line 1 column 1)" in refusal(write(tmp_path, ""))


@pytest.mark.parametrize("text, name, line, column", [
    ('{"a": NaN}', "NaN", 1, 7),
    ('{"a": 1,\n "b": [2, Infinity]}', "Infinity", 2, 11),
    ('{"NaN": "Infinity", "x": -Infinity}', "-Infinity", 1, 26),  # constants inside strings are no fault
])
@pytest.mark.parametrize("error", ERRORS)
def test_strict_refuses_nan_and_infinity_with_their_place(tmp_path, error, text, name, line, column):
    path = write(tmp_path, text)
    assert refusal(path, error, strict=True) == \
        f"{path}: not valid JSON ({name} is not a JSON value at line {line} column {column})"


def test_without_strict_nan_and_infinity_are_read(tmp_path):
    value = read_json_file(write(tmp_path, "[NaN, Infinity, -Infinity]"), DataError)
    assert math.isnan(value[0]) and value[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize("text, kind", [("[1]", "an array"), ('"s"', "a string"), ("3", "a number"),
                                        ("true", "a boolean"), ("null", "null")])
@pytest.mark.parametrize("error", ERRORS)
def test_want_object_names_the_top_level_type(tmp_path, error, text, kind):
    path = write(tmp_path, text)
    assert refusal(path, error, want_object=True) == f"{path}: holds {kind}; expected a JSON object"
    assert refusal(path, error, want_object=True, expected="a tokenizer file (a JSON object)") == \
        f"{path}: holds {kind}; expected a tokenizer file (a JSON object)"


def test_the_cause_is_kept_for_tracebacks(tmp_path):
    with pytest.raises(StoreError) as caught:
        read_json_file(write(tmp_path, "{"), StoreError)
    assert caught.value.__cause__ is not None


def test_json_type_names():
    assert [json_type(v) for v in ({}, [], "", True, None, 1, 1.5)] == \
        ["an object", "an array", "a string", "a boolean", "null", "a number", "a number"]


# --- the four readers that use it keep their own error classes --------------------------------------

def test_callers_keep_their_error_classes(tmp_path):
    from lavida_bench.model.checkpoint import meta_model
    from lavida_bench.reports.load import load_run
    from lavida_bench.tasks.files import read_json as task_read_json

    cut = '{"a": [1, 2'
    fault = "not valid JSON (Expecting ',' delimiter at line 1 column 12)"
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    write(checkpoint, cut, "config.json")
    run = tmp_path / "run"
    run.mkdir()
    write(run, cut, "manifest.json")
    data = write(tmp_path, cut, "data.json")
    cases = [(CheckpointError, lambda: meta_model(checkpoint), checkpoint / "config.json"),
             (DataError, lambda: load_run(run), run / "manifest.json"),
             (StoreError, lambda: store_read_json(data), data),
             (DataError, lambda: task_read_json(data, "ImgEdit instruction file"), data)]
    for error, read, path in cases:
        with pytest.raises(error) as caught:
            read()
        assert type(caught.value) is error and str(caught.value).startswith(f"{path}: {fault}; expected ")
