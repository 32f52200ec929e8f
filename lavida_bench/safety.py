"""Trust boundaries: paths named inside records, and secrets in anything the harness writes.

Dataset records may name files (images, sources). A record is data, not a capability: a path
that is absolute or climbs out of the dataset folder is refused, so a crafted dataset cannot
make the harness read arbitrary files. Secrets (API keys) only ever come from the environment;
`redact` removes their values from any text before it is logged or written.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from lavida_bench.tasks.base import DataError

SECRET_NAME = re.compile(r"(API_KEY|_TOKEN|SECRET|PASSWORD)$")
MIN_SECRET_LEN = 8  # shorter values would redact ordinary words


def resolve_inside(root: Path, relpath: str, where: str) -> Path:
    """`root / relpath`, refusing absolute paths and paths that escape `root`.
    `where` names the record and field for the error message."""
    if not isinstance(relpath, str) or not relpath:
        raise DataError(f"{where}: expected a relative file path, got {relpath!r}")
    candidate = Path(relpath)
    if candidate.is_absolute():
        raise DataError(f"{where}: absolute path {relpath!r} not allowed (paths are relative to {root})")
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DataError(f"{where}: path {relpath!r} escapes the dataset folder {root}")
    return resolved


def secret_values() -> list[str]:
    return [v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LEN]


def redact(text: str) -> str:
    for value in secret_values():
        text = text.replace(value, "[REDACTED]")
    return text
