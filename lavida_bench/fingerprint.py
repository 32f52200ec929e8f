"""File fingerprints for the manifest: enough to tell whether two runs used the same bytes.

Small files are hashed whole; large files by size + sha256 of their first and last MiB (a
full hash of a 16 GB checkpoint would dominate a short run). Folders are fingerprinted file by
file, except that image folders are summarised (count, total size, hash of the name/size list).
Safetensors weights get their own fingerprint (`safetensors_fingerprint`): the header, which
names every tensor with its dtype, shape and offsets, plus the tensor bytes, sampled or whole.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

MIB = 1 << 20
FULL_HASH_LIMIT = 4 * MIB
SAMPLE_BLOCKS = 16  # blocks of tensor data hashed per safetensors file by default
SAMPLE_BLOCK_BYTES = 64 * 1024
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def file_fingerprint(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256()
    with open(p, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            h.update(f.read())
            mode = "full"
        else:
            h.update(f.read(MIB))
            f.seek(size - MIB)
            h.update(f.read(MIB))
            mode = "first+last MiB"
    return {"path": str(p), "size": size, "sha256": h.hexdigest(), "hashed": mode}


def path_fingerprint(path: str | Path | None) -> dict[str, Any] | None:
    """Fingerprint a file or a folder (None -> None; missing -> a record saying so)."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        return {"path": str(p), "missing": True}
    if p.is_file():
        return file_fingerprint(p)
    files, images = [], []
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        (images if f.suffix.lower() in IMAGE_SUFFIXES else files).append(f)
    listing = hashlib.sha256("".join(f"{f.relative_to(p)}\t{f.stat().st_size}\n" for f in images).encode())
    return {
        "path": str(p),
        "files": {str(f.relative_to(p)): file_fingerprint(f) for f in files},
        "images": {"count": len(images), "bytes": sum(f.stat().st_size for f in images),
                   "listing_sha256": listing.hexdigest()},
    }


def safetensors_fingerprint(path: str | Path, full: bool = False) -> dict[str, Any]:
    """Size, sha256 of the header and sha256 of the tensor bytes after it: every byte (`full`)
    or SAMPLE_BLOCKS evenly spaced blocks of SAMPLE_BLOCK_BYTES (1 MiB per file, so the default
    costs milliseconds at any size). Two checkpoints of one architecture have identical headers
    and sizes; their weights differ everywhere, so the sampled blocks tell them apart. An edit of
    a few bytes between the blocks is caught only by `full`."""
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        declared = int.from_bytes(f.read(8), "little")  # safetensors: u64 header length, then JSON
        data_start = min(8 + declared, size)
        header = hashlib.sha256(f.read(data_start - 8 if size >= 8 else 0)).hexdigest()
        data = hashlib.sha256()
        sampled = not full and size - data_start > SAMPLE_BLOCKS * SAMPLE_BLOCK_BYTES
        if sampled:
            stride = (size - data_start - SAMPLE_BLOCK_BYTES) // (SAMPLE_BLOCKS - 1)
            for i in range(SAMPLE_BLOCKS):
                f.seek(data_start + i * stride)
                data.update(f.read(SAMPLE_BLOCK_BYTES))
        else:
            for chunk in iter(lambda: f.read(8 * MIB), b""):
                data.update(chunk)
    hashed = f"{SAMPLE_BLOCKS} evenly spaced {SAMPLE_BLOCK_BYTES // 1024} KiB blocks" if sampled else "every byte"
    return {"size": size, "header_sha256": header, "data_sha256": data.hexdigest(), "data_hashed": hashed}
