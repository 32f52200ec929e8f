"""File fingerprints for the manifest: enough to tell whether two runs used the same bytes.

Small files are hashed whole; large files by size + sha256 of their first and last MiB (a
full hash of a 16 GB checkpoint would dominate a short run). Folders are fingerprinted file by
file, except that image folders are summarised (count, total size, hash of the name/size list).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

MIB = 1 << 20
FULL_HASH_LIMIT = 4 * MIB
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
