"""The record store: one folder per run, JSONL records per task/variant/stage, images as files.

Layout::

    RUN/manifest.json
    RUN/records/<task>/<variant>/outputs.part-r<rank>.jsonl   one shard per writing process
    RUN/records/<task>/<variant>/outputs.jsonl                merged (rank 0, after all ranks)
    RUN/records/<task>/<variant>/scores.jsonl                 scoring stage
    RUN/images/<task>/<variant>/<sample id>.png
    RUN/metrics.json

Crash safety: every record is one line, written whole and flushed (and fsynced) as the sample
finishes; images are written to a temporary name and renamed before their record is written,
so a record always points at a complete image. A kill during a write leaves at most a torn
trailing line, which `read_jsonl` detects and `repair_jsonl` truncates on resume.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from PIL import Image

OUTPUTS = "outputs"
SCORES = "scores"


class StoreError(RuntimeError):
    """A run folder cannot be read or written; the message names the file."""


def safe_name(sample_id: str) -> str:
    """A file-name-safe, collision-free rendering of a sample id (ids may contain '/')."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", sample_id)
    if cleaned == sample_id:
        return cleaned
    return f"{cleaned}-{abs(hash_text(sample_id)) % 10**8:08d}"


def hash_text(text: str) -> int:
    import hashlib

    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """Records of a JSONL file and whether its last line is torn (a kill mid-write).
    A malformed line that is not the last one is corruption and raises `StoreError`."""
    if not path.exists():
        return [], False
    data = path.read_bytes()
    lines = data.split(b"\n")
    records, torn = [], False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        is_last = i == len(lines) - 1  # no trailing newline after it
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            if is_last:
                torn = True
                break
            raise StoreError(f"{path}: line {i + 1} is not valid JSON ({err})") from err
        if is_last:  # parsed, but the newline never made it: treat as torn too
            torn = True
            records.pop()
    return records, torn


def repair_jsonl(path: Path) -> bool:
    """Truncate a torn trailing line; True if something was cut."""
    if not path.exists():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    cut = data.rfind(b"\n") + 1
    with open(path, "r+b") as f:
        f.truncate(cut)
    return True


class JsonlWriter:
    """Append-only JSONL writer that makes every record durable before returning."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")
        except OSError as err:
            raise StoreError(f"cannot open {path} for writing: {err.strerror or err}") from err

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        try:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as err:
            raise StoreError(f"cannot write to {self.path}: {err.strerror or err}") from err

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {path}: {err.strerror or err}") from err


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())


class RunStore:
    """Access to one run folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def records_dir(self, task: str, variant: str) -> Path:
        return self.root / "records" / task / variant

    def part_path(self, task: str, variant: str, rank: int) -> Path:
        return self.records_dir(task, variant) / f"{OUTPUTS}.part-r{rank}.jsonl"

    def stage_path(self, task: str, variant: str, stage: str) -> Path:
        return self.records_dir(task, variant) / f"{stage}.jsonl"

    def image_relpath(self, task: str, variant: str, sample_id: str, suffix: str = "") -> str:
        return f"images/{task}/{variant}/{safe_name(sample_id)}{suffix}.png"

    def save_image(self, image: Image.Image, relpath: str) -> None:
        import io

        buf = io.BytesIO()
        image.save(buf, format="PNG")
        write_atomic(self.root / relpath, buf.getvalue())

    def output_files(self, task: str, variant: str) -> list[Path]:
        d = self.records_dir(task, variant)
        merged = d / f"{OUTPUTS}.jsonl"
        return ([merged] if merged.exists() else []) + sorted(d.glob(f"{OUTPUTS}.part-r*.jsonl"))

    def repair(self, task: str, variant: str) -> list[Path]:
        """Cut torn trailing lines in this task/variant's files; returns the files repaired."""
        files = self.output_files(task, variant) + [self.stage_path(task, variant, SCORES)]
        return [p for p in files if repair_jsonl(p)]

    def outputs(self, task: str, variant: str) -> dict[str, dict[str, Any]]:
        """Latest record per sample id over the merged file and all shards: an ok record wins
        over an error record (errors are retried on resume)."""
        best: dict[str, dict[str, Any]] = {}
        for path in self.output_files(task, variant):
            for rec in read_jsonl(path)[0]:
                prev = best.get(rec["id"])
                if prev is None or prev.get("status") != "ok":
                    best[rec["id"]] = rec
        return best

    def finished_ids(self, task: str, variant: str) -> set[str]:
        return {i for i, r in self.outputs(task, variant).items() if r.get("status") == "ok"}

    def merge(self, task: str, variant: str) -> Path:
        """Write the merged, id-sorted outputs file and remove the shards it absorbed."""
        parts = sorted(self.records_dir(task, variant).glob(f"{OUTPUTS}.part-r*.jsonl"))
        records = self.outputs(task, variant)
        merged = self.stage_path(task, variant, OUTPUTS)
        body = "".join(json.dumps(records[i], ensure_ascii=False, sort_keys=True) + "\n"
                       for i in sorted(records))
        write_atomic(merged, body.encode())
        for p in parts:
            p.unlink()
        return merged

    def scores(self, task: str, variant: str) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in read_jsonl(self.stage_path(task, variant, SCORES))[0]}

    def task_variants(self) -> Iterator[tuple[str, str]]:
        base = self.root / "records"
        if not base.exists():
            return
        for tdir in sorted(p for p in base.iterdir() if p.is_dir()):
            for vdir in sorted(p for p in tdir.iterdir() if p.is_dir()):
                yield tdir.name, vdir.name


def iter_batches(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]
