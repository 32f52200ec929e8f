"""The record store: one folder per run, JSONL records per task/variant/stage, images as files.

Layout::

    RUN/manifest.json
    RUN/records/<task>/<variant>/outputs.part-r<rank>.jsonl   one shard per writing process
    RUN/records/<task>/<variant>/outputs.jsonl                merged (rank 0, after all ranks)
    RUN/records/<task>/<variant>/scores.jsonl                 scoring stage
    RUN/images/<task>/<variant>/<safe_name(id)>.png           (+attempt<k>.png: reflection attempts)
    RUN/metrics.json

Crash safety: every record is one line, written whole and fsynced as the sample finishes;
images are written to a temporary name, fsynced and renamed before their record is written, so a
record always points at a complete image. A kill during a write leaves at most a torn trailing
line, which `read_jsonl` detects and `repair` truncates on resume (deleting leftover
temporaries too); a failed write (disk full) is cut back at once and raised as a `StoreError`
naming the file. Every object written passes through `safety.redact` before it is serialized.
`audit` and `stable_snapshot` state what a finished run folder must look like (docs/reliability.md).

Damage from outside (a hand-edited or truncated file, a deleted image) is never taken for a
result: a malformed line is a `StoreError` naming file and line; an ok record is checked against
its sample (sample digest, image names) when read, and its images must be whole for the sample
to count as done, so a lost image is generated again; records keep each image's sha256, so a
regenerated image is scored again.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from lavida_bench.api import Sample, StoreError
from lavida_bench.jsonfile import read_json_file
from lavida_bench.safety import redact

OUTPUTS = "outputs"
TMP_PREFIX = "."  # temporary files are hidden: ".<name>.tmp<pid>"; image names never start with "."
TMP_GLOB = f"{TMP_PREFIX}*.tmp*"
SCORES = "scores"
MAX_STEM = 160  # characters of an image file stem (file systems allow 255 bytes per name)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the empty IEND chunk every complete PNG ends with


def safe_name(sample_id: str) -> str:
    """The file-name stem of a sample's images, unambiguous by construction: ASCII letters,
    digits, '_' and '-' are kept, '.' too except in first place (so a stem never starts with the
    '.' of a temporary); every other character becomes %XX per UTF-8 byte ('%' itself included),
    so two ids never share a stem, and '+' (the attempt separator) never appears in one.
    Very long ids are cut and end in '%%' plus a digest, which no escaped id can produce."""
    parts = []
    for i, ch in enumerate(sample_id):
        keep = ch.isascii() and (ch.isalnum() or ch in "_-" or (ch == "." and i > 0))
        parts.append(ch if keep else "".join(f"%{b:02X}" for b in ch.encode()))
    stem = "".join(parts) or "%"
    if len(stem) > MAX_STEM:
        stem = f"{stem[:MAX_STEM - 18]}%%{hashlib.sha256(sample_id.encode()).hexdigest()[:16]}"
    return stem


def legacy_image_names(sample_id: str) -> tuple[str, str]:
    """(image, attempt-0 image without its number) under the naming of run folders written
    before `safe_name`: accepted when verifying old records, never written."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", sample_id)
    if cleaned != sample_id:
        cleaned = f"{cleaned}-{int(hashlib.sha256(sample_id.encode()).hexdigest()[:15], 16) % 10**8:08d}"
    return f"{cleaned}.png", f"{cleaned}-attempt"


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """Records of a JSONL file and whether its last line is torn (a kill mid-write)."""
    numbered, torn = read_numbered(path)
    return [rec for _, rec in numbered], torn


def read_numbered(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
    """(line number, record) pairs of a JSONL file of records, and whether its last line is torn.
    A malformed line that is not the last one is corruption: not JSON, not an object, or without
    a string `id` raises `StoreError` naming the file and line."""
    if not path.exists():
        return [], False
    try:
        data = path.read_bytes()
    except OSError as err:
        raise StoreError(f"cannot read {path}: {err.strerror or err}") from err
    lines = data.split(b"\n")
    records, torn = [], False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if i == len(lines) - 1:  # no newline after it: a write that a kill cut short
            torn = True
            break
        records.append((i + 1, parse_record(line, f"{path}: line {i + 1}")))
    return records, torn


def parse_record(line: bytes, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StoreError(f"{where} is not valid JSON ({err}); a run folder's lines are only ever "
                         f"written whole, so this file was damaged: restore it or delete the line") from err
    if not isinstance(record, dict):
        raise StoreError(f"{where}: expected a JSON object, got {type(record).__name__}; delete the line")
    if not isinstance(record.get("id"), str):
        got = "missing" if "id" not in record else f"a {type(record['id']).__name__}"
        raise StoreError(f"{where}: field 'id' must be a string, {got}; delete the line")
    return record


def read_json(path: Path) -> Any:
    """A JSON file the store wrote (manifest.json, metrics.json); any fault is a `StoreError` from
    the shared reader. The name stays because four modules import it from here."""
    return read_json_file(path, StoreError, expected="JSON written whole by the run store")


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
    environment are redacted from every record before it is serialized (safety.redact)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "ab", buffering=0)
        except OSError as err:
            raise StoreError(f"cannot open {path} for writing: {err.strerror or err}") from err

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(redact(record), ensure_ascii=False, sort_keys=True) + "\n").encode()
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


def write_text(path: Path, text: str) -> None:
    """A UTF-8 text file written atomically: reports, so a kill never leaves a truncated page."""
    write_atomic(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(redact(obj), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomic(path, text.encode())


def sample_digest(sample: Sample) -> str:
    """sha256 (16 hex digits) of a sample's id and data: a record carries it so that a record
    moved to another sample's id is recognised."""
    body = json.dumps({"id": sample.id, "data": sample.data}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def record_images(record: dict[str, Any]) -> list[str]:
    """Run-relative paths of the images an output record names (image, then attempts)."""
    out = record.get("output") if isinstance(record.get("output"), dict) else {}
    names = [out.get("image"), *(out.get("attempts") or [])]
    return [n for n in names if isinstance(n, str)]


def png_complete(path: Path) -> bool:
    """Cheap check that a stored PNG is there and whole (signature at the start, the IEND chunk at
    the end): two small reads, not a decode, so a resume over 30k images stays fast."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(PNG_SIGNATURE))
            f.seek(0, os.SEEK_END)
            if f.tell() < len(PNG_SIGNATURE) + len(PNG_END):
                return False
            f.seek(-len(PNG_END), os.SEEK_END)
            return head == PNG_SIGNATURE and f.read() == PNG_END
    except OSError:
        return False


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in `folder` (never read as results)."""
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(TMP_GLOB) if p.is_file()]
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

    def image_relpath(self, task: str, variant: str, sample_id: str, attempt: int | None = None) -> str:
        """Where a sample's image (or its reflection attempt `attempt`) is stored."""
        suffix = "" if attempt is None else f"+attempt{attempt}"
        return f"images/{task}/{variant}/{safe_name(sample_id)}{suffix}.png"

    def save_image(self, image: Image.Image, relpath: str) -> str:
        """Write a PNG atomically; returns the sha256 (16 hex digits) of its bytes, which the
        record keeps so a score always belongs to the bytes it was computed on."""
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        write_atomic(self.root / relpath, buf.getvalue())
        return hashlib.sha256(buf.getvalue()).hexdigest()[:16]

    def output_files(self, task: str, variant: str) -> list[Path]:
        d = self.records_dir(task, variant)
        merged = d / f"{OUTPUTS}.jsonl"
        return ([merged] if merged.exists() else []) + sorted(d.glob(f"{OUTPUTS}.part-r*.jsonl"))

    def repair(self, task: str, variant: str) -> list[Path]:
        """Cut torn trailing lines in this task/variant's files and delete temporaries a killed
        writer left behind (here and in the run folder itself: metrics, manifest, reports);
        returns the JSONL files repaired."""
        files = self.output_files(task, variant) + [self.stage_path(task, variant, SCORES)]
        repaired = [p for p in files if repair_jsonl(p)]
        for folder in (self.root, self.records_dir(task, variant), self.root / "images" / task / variant):
            remove_stale_temporaries(folder)
        return repaired

    def outputs(self, task: str, variant: str,
                samples: Mapping[str, Sample] | None = None) -> dict[str, dict[str, Any]]:
        """Latest record per sample id over the merged file and all shards: an ok record replaces
        an earlier one (a regenerated image), an error never replaces an ok record (errors are
        retried on resume). With `samples`, each ok record is first checked against its sample
        (`check_record`): one that belongs to another sample raises `StoreError`."""
        best: dict[str, dict[str, Any]] = {}
        for path in self.output_files(task, variant):
            for line, rec in read_numbered(path)[0]:
                ok = rec.get("status") == "ok"
                if ok and samples is not None and rec["id"] in samples:
                    self.check_record(task, variant, rec, samples[rec["id"]], f"{path}: line {line}")
                if ok or best.get(rec["id"], {}).get("status") != "ok":
                    best[rec["id"]] = rec
        return best

    def check_record(self, task: str, variant: str, rec: dict[str, Any], sample: Sample, where: str) -> None:
        """Refuse an ok record that was not made for `sample`: its sample digest differs, or its
        images are not the ones this sample's id names (an id edited to another sample's)."""
        digest = rec.get("sample_sha256")
        if digest is not None and digest != sample_digest(sample):
            raise StoreError(f"{where}: record {rec['id']!r} was made for a different sample (sample_sha256 "
                             f"{digest} != {sample_digest(sample)}); delete the line to regenerate it")
        out = rec.get("output") if isinstance(rec.get("output"), dict) else {}
        names = [(out.get("image"), None)] + [(rel, k) for k, rel in enumerate(out.get("attempts") or [])]
        for rel, attempt in names:
            if rel is not None and not self.is_image_of(task, variant, rec["id"], rel, attempt):
                raise StoreError(f"{where}: record {rec['id']!r} names image {rel!r}, which belongs to another "
                                 f"sample (expected {self.image_relpath(task, variant, rec['id'], attempt)!r}); "
                                 f"delete the line to regenerate it")

    def is_image_of(self, task: str, variant: str, sample_id: str, rel: Any, attempt: int | None) -> bool:
        if rel == self.image_relpath(task, variant, sample_id, attempt):
            return True
        image, attempt_prefix = legacy_image_names(sample_id)
        legacy = image if attempt is None else f"{attempt_prefix}{attempt}.png"
        return rel == f"images/{task}/{variant}/{legacy}"

    def finished_ids(self, task: str, variant: str, samples: Mapping[str, Sample] | None = None) -> set[str]:
        """Ids whose latest record is ok and whose images are all on disk and complete: an image
        deleted or damaged since is generated again."""
        return {i for i, r in self.outputs(task, variant, samples).items()
                if r.get("status") == "ok" and all(png_complete(self.root / rel) for rel in record_images(r))}

    def merge(self, task: str, variant: str) -> Path:
        """Write the merged, id-sorted outputs file and remove the shards it absorbed."""
        parts = sorted(self.records_dir(task, variant).glob(f"{OUTPUTS}.part-r*.jsonl"))
        records = self.outputs(task, variant)
        merged = self.stage_path(task, variant, OUTPUTS)
        body = "".join(json.dumps(redact(records[i]), ensure_ascii=False, sort_keys=True) + "\n"
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
        shot["metrics.json"] = inside_run(stable_view(read_json(metrics)), str(store.root))
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
    file per task/variant with each id once, no shard or temporary left over (run folder,
    records, images), every image an ok record names present, decodable and with the bytes the
    record's digest names, no torn line, scores only for stored outputs."""
    problems = [f"{p}: temporary file left over" for p in sorted(store.root.glob(TMP_GLOB))]
    for task, variant in store.task_variants():
        rdir = store.records_dir(task, variant)
        leftovers = sorted(p.name for p in rdir.glob(f"{OUTPUTS}.part-r*.jsonl"))
        leftovers += sorted(p.name for p in rdir.glob(TMP_GLOB))
        problems += [f"{rdir / name}: left over after the run" for name in leftovers]
        records, torn = read_jsonl(store.stage_path(task, variant, OUTPUTS))
        ids = [r["id"] for r in records]
        if torn:
            problems.append(f"{store.stage_path(task, variant, OUTPUTS)}: torn trailing line")
        if len(ids) != len(set(ids)):
            problems.append(f"{store.stage_path(task, variant, OUTPUTS)}: duplicate ids")
        for rec in records:
            if rec.get("status") == "ok":
                digests = (rec.get("output") or {}).get("sha256") or {}
                for rel in record_images(rec):
                    problems += image_problems(store.root / rel, rec["id"], digests.get(rel))
        scored = set(store.scores(task, variant))
        problems += [f"{task}/{variant}: score for {sid!r} without an output" for sid in sorted(scored - set(ids))]
    images = store.root / "images"
    if images.is_dir():
        problems += [f"{p}: temporary file left over" for p in sorted(images.rglob(TMP_GLOB))]
    return problems


def image_problems(path: Path, sample_id: str, digest: str | None = None) -> list[str]:
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # decodes every byte: a truncated PNG fails here
    except (OSError, ValueError) as err:
        return [f"{path}: image of record {sample_id!r} unreadable ({err})"]
    if digest is not None and hashlib.sha256(data).hexdigest()[:16] != digest:
        return [f"{path}: image of record {sample_id!r} is not the one the record names (sha256 differs)"]
    return []


def iter_batches(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]
