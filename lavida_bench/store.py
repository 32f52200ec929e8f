"""The record store: one folder per run, JSONL records per task/variant/stage, images as files.

Layout::

    RUN/manifest.json
    RUN/records/<task>/<variant>/outputs.part-r<rank>.jsonl   one shard per writing process
    RUN/records/<task>/<variant>/outputs.jsonl                merged (rank 0, after all ranks)
    RUN/records/<task>/<variant>/scores.jsonl                 scoring stage
    RUN/images/<task>/<variant>/<sample id>.png
    RUN/metrics.json

Crash safety: every record is one line, written whole and fsynced as the sample finishes;
images are written to a temporary name, fsynced and renamed before their record is written, so a
record always points at a complete image. A kill during a write leaves at most a torn trailing
line, which `read_jsonl` detects and `repair` truncates on resume (deleting leftover
temporaries too); a failed write (disk full) is cut back at once and raised as a `StoreError`
naming the file. Every line written passes through `safety.redact`. `audit` and
`stable_snapshot` state what a finished run folder must look like (docs/reliability.md).
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from lavida_bench.safety import redact

OUTPUTS = "outputs"
TMP_PREFIX = "."  # temporary files are hidden: ".<name>.tmp<pid>"
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
    """Append-only JSONL writer that makes every record durable before returning.

    Each record goes out as one unbuffered write of a whole line, then fsync. If the write fails
    (disk full, quota, I/O error) the file is cut back to its last complete line, so what was
    written before stays valid and resumable, and the error names the file. Secrets from the
    environment are redacted from every line (safety.redact)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "ab", buffering=0)
        except OSError as err:
            raise StoreError(f"cannot open {path} for writing: {err.strerror or err}") from err

    def write(self, record: dict[str, Any]) -> None:
        line = (redact(json.dumps(record, ensure_ascii=False, sort_keys=True)) + "\n").encode()
        start = self._file.tell()
        try:
            view = memoryview(line)
            while view:  # a raw write may be partial
                view = view[self._file.write(view):]
            os.fsync(self._file.fileno())
        except OSError as err:
            self._cut_back(start)
            raise StoreError(f"cannot write to {self.path}: {err.strerror or err}") from err

    def _cut_back(self, size: int) -> None:
        """Best effort: drop the partial line a failed write left behind (a resume would also
        cut it as a torn trailing line)."""
        try:
            self._file.truncate(size)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as err:
            raise StoreError(f"cannot close {self.path}: {err.strerror or err}") from err

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # never let a second failure on close hide the error already in flight
            self.close()
        except StoreError:
            pass


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, rename: readers see the old file or the whole new one,
    never a partial file, even after a kill or a power loss."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        discard(tmp)
        raise StoreError(f"cannot write {path}: {err.strerror or err}") from err


def discard(path: Path) -> None:
    """Remove a file if it is there; a folder that cannot even be listed is no second error."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomic(path, redact(text).encode())


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in `folder` (never read as results)."""
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(f"{TMP_PREFIX}*.tmp*") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


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
        """Cut torn trailing lines in this task/variant's files and delete temporaries a killed
        writer left behind; returns the JSONL files repaired."""
        files = self.output_files(task, variant) + [self.stage_path(task, variant, SCORES)]
        repaired = [p for p in files if repair_jsonl(p)]
        for folder in (self.records_dir(task, variant), self.root / "images" / task / variant):
            remove_stale_temporaries(folder)
        return repaired

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
        write_atomic(merged, redact(body).encode())
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


# Wall-clock measurements: the only values that differ between two CPU runs of the same config
# and seeds. They appear in record traces, in scores that carry timings (RefCOCO's latency_s) and
# in the metrics aggregated from those (docs/reliability.md, "Determinism").
VOLATILE_FIELDS = frozenset({"latency_s", "runner_s", "peak_memory_bytes", "seconds"})


def stable_view(value: Any) -> Any:
    """`value` (a record, score record or metrics.json) without its wall-clock fields, at any
    depth: what must be identical across reruns, resumes, batch sizes and process counts."""
    if isinstance(value, dict):
        return {k: stable_view(v) for k, v in value.items() if k not in VOLATILE_FIELDS}
    if isinstance(value, list):
        return [stable_view(v) for v in value]
    return value


def stable_snapshot(store: RunStore) -> dict[str, Any]:
    """What a run produced that must not depend on how it got done (interrupted, resumed, on how
    many processes, in what batches): records, scores and metrics in their stable view, image
    bytes. Two runs of one config and seed must give equal snapshots."""
    shot: dict[str, Any] = {}
    metrics = store.root / "metrics.json"
    if metrics.exists():
        shot["metrics.json"] = inside_run(stable_view(json.loads(metrics.read_text())), str(store.root))
    for task, variant in store.task_variants():
        for stage in (OUTPUTS, SCORES):
            records = [inside_run(stable_view(r), str(store.root))
                       for r in read_jsonl(store.stage_path(task, variant, stage))[0]]
            shot[f"{task}/{variant}/{stage}"] = sorted(records, key=lambda r: r["id"])
    images = store.root / "images"
    for png in sorted(images.rglob("*.png")) if images.is_dir() else []:
        shot[str(png.relative_to(store.root))] = png.read_bytes()
    return shot


def inside_run(value: Any, root: str) -> Any:
    """`value` with absolute paths into the run folder written as "RUN/...", so two run folders
    that hold the same results compare equal (FID score records name their reference file)."""
    if isinstance(value, dict):
        return {k: inside_run(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [inside_run(v, root) for v in value]
    if isinstance(value, str) and value.startswith(root + os.sep):
        return "RUN" + value[len(root):]
    return value


def audit(store: RunStore) -> list[str]:
    """Consistency problems of a finished run folder (empty when it is sound): a merged outputs
    file per task/variant with each id once, no shard or temporary left over, every image an ok
    record names present and decodable, no torn line, scores only for stored outputs."""
    problems: list[str] = []
    for task, variant in store.task_variants():
        rdir = store.records_dir(task, variant)
        leftovers = sorted(p.name for p in rdir.glob(f"{OUTPUTS}.part-r*.jsonl"))
        leftovers += sorted(p.name for p in rdir.glob(f"{TMP_PREFIX}*.tmp*"))
        problems += [f"{rdir / name}: left over after the run" for name in leftovers]
        records, torn = read_jsonl(store.stage_path(task, variant, OUTPUTS))
        ids = [r["id"] for r in records]
        if torn:
            problems.append(f"{store.stage_path(task, variant, OUTPUTS)}: torn trailing line")
        if len(ids) != len(set(ids)):
            problems.append(f"{store.stage_path(task, variant, OUTPUTS)}: duplicate ids")
        for rec in records:
            if rec.get("status") == "ok":
                out = rec.get("output") or {}
                for rel in [out.get("image"), *out.get("attempts", [])]:
                    if rel is not None:
                        problems += image_problems(store.root / rel, rec["id"])
        scored = set(store.scores(task, variant))
        problems += [f"{task}/{variant}: score for {sid!r} without an output" for sid in sorted(scored - set(ids))]
    images = store.root / "images"
    if images.is_dir():
        problems += [f"{p}: temporary file left over" for p in sorted(images.rglob(f"{TMP_PREFIX}*.tmp*"))]
    return problems


def image_problems(path: Path, sample_id: str) -> list[str]:
    try:
        with Image.open(path) as im:
            im.load()  # decodes every byte: a truncated PNG fails here
    except (OSError, ValueError) as err:
        return [f"{path}: image of record {sample_id!r} unreadable ({err})"]
    return []


def iter_batches(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]
