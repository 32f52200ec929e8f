"""Reading benchmark files in their official formats, shared by every task's `load`.

Every reader turns a problem into a `DataError` naming the file (and record, field) and what
was expected: text must be UTF-8, JSON/JSONL well-formed, parquet readable with the named
columns. Hugging Face image cells (`{"bytes": ..., "path": ...}` structs in parquet, or plain
file paths) are checked without decoding, and `ParquetImages` reads one column at a time, so
`load()` never decodes images and `request()` decodes one at a time, through `read_image`
(size limit, strict decoding).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image

from lavida_bench.api import DataError
from lavida_bench.jsonfile import read_json_file
from lavida_bench.safety import resolve_inside
from lavida_bench.tasks.base import read_image


def image_ref(value: Any, where: str) -> dict[str, Any] | None:
    """Check a Hugging Face image cell without decoding it; None for an empty cell.

    HF `datasets` stores an `Image()` feature in parquet as a struct `{bytes, path}`; JSON forms
    name a file instead. Returns `{"path": str}` for file references, `{"inline": True}` when the
    bytes are in the cell (the caller keeps the file/row/column to re-read them).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return {"path": value}
    if isinstance(value, Mapping):
        if value.get("bytes"):
            return {"inline": True}
        if value.get("path"):
            return {"path": str(value["path"])}
        raise DataError(f"{where}: image cell has neither bytes nor path")
    raise DataError(f"{where}: image cell must be a {{bytes, path}} struct or a file path, "
                    f"got {type(value).__name__}")


class ParquetImages:
    """Reads image cells from parquet files one column at a time, keeping only the most recently
    used column in memory (the runner walks samples in id order, i.e. file by file)."""

    def __init__(self) -> None:
        self._key: tuple[str, str] | None = None
        self._column: Any = None

    def read(self, file: Path, row: int, column: str) -> Image.Image:
        where = f"{file}: row {row}, field {column!r}"
        if self._key != (str(file), column):
            try:
                with parquet_file(file) as table:
                    self._column = table.read(columns=[column]).column(column)
            except (OSError, KeyError, ValueError) as err:
                raise DataError(f"{where}: cannot read ({err})") from err
            self._key = (str(file), column)
        cell = self._column[row].as_py()
        if isinstance(cell, Mapping) and cell.get("bytes"):
            return read_image(cell["bytes"], where)
        ref = image_ref(cell, where)
        if ref is None:
            raise DataError(f"{where}: image is empty")
        return read_image(resolve_inside(file.parent, ref["path"], where), where)


def parquet_file(path: Path) -> Any:
    """An open `pyarrow.parquet.ParquetFile` (use it as a context manager). Read through it rather
    than `pq.read_table`, whose dataset machinery costs about 0.2 s to import on first use."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable parquet file ({err})") from err


def read_parquet(path: Path, columns: list[str], *, present: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of a parquet file restricted to `columns`; those and the `present` ones (checked, not
    read: an image column is read later, one cell at a time) must exist."""
    with parquet_file(path) as table:
        names = table.schema_arrow.names
        missing = [c for c in [*columns, *present] if c not in names]
        if missing:
            raise DataError(f"{path}: missing field(s) {', '.join(map(repr, missing))} (has: {', '.join(names)})")
        try:
            return table.read(columns=columns).to_pylist()
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: cannot read columns {columns} ({err})") from err


def split_files(folder: Path, split: str, what: str) -> list[Path]:
    """A split's files: parquet shards `**/{split}-*.parquet` (HF snapshot layout) or
    `{split}.parquet`, else `{split}.jsonl`; [] when absent, an error when both forms exist."""
    shards = sorted(set(folder.rglob(f"{split}-*.parquet")) | set(folder.rglob(f"{split}.parquet")))
    jsonl = folder / f"{split}.jsonl"
    if shards and jsonl.exists():
        raise DataError(f"{what}: both {jsonl} and parquet shards ({shards[0]}, ...) exist; keep one form")
    return shards or ([jsonl] if jsonl.exists() else [])


def relative(path: Path, root: Path) -> str:
    """`path` relative to the data dir when inside it (so sample data survives moving the
    folder), else absolute."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def read_text(path: Path) -> str:
    """A benchmark text file as UTF-8 (line ends kept as they are); unreadable or not UTF-8 is a
    `DataError` naming it. Every task reads its text files through this (or the two below)."""
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from err
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err})") from err


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: missing ({what})")
    return path


def read_json(path: Path, what: str | None = None) -> Any:
    """A benchmark JSON file (`what`: what it should hold), read by the shared reader; the name
    stays because four tasks import it from here."""
    return read_json_file(path, DataError, expected=what)


def read_jsonl(path: Path) -> list[Any]:
    rows = []
    lines = read_text(path).splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: line {n}: not JSON ({err})") from err
    return rows
