"""Trust boundaries: paths named inside records, and secrets in anything the harness writes.

Dataset records may name files (images, sources). A record is data, not a capability: a path
that is absolute or climbs out of the dataset folder is refused, so a crafted dataset cannot
make the harness read arbitrary files. Secrets (API keys) only ever come from the environment;
`redact` removes their values from any text before it is logged or written.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from lavida_bench.tasks.base import DataError

# Environment variables whose values are secrets: a name with a component (split at "_") such as
# KEY, APIKEY, TOKEN, SECRET, PASSWORD or CREDENTIALS: OPENAI_API_KEY, MY_JUDGE_KEY, HF_TOKEN,
# AWS_SECRET_ACCESS_KEY, DB_PASS. Not TOKENIZERS_PARALLELISM or MONKEY (docs/reliability.md).
SECRET_NAME = re.compile(r"(^|_)(KEY|APIKEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|CREDENTIALS?)(_|$)", re.IGNORECASE)
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
    """`text` with every secret value replaced, also in its JSON-escaped form (a key with a
    quote or backslash in it is written escaped inside JSON records)."""
    for value in secret_values():
        for form in {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]}:
            text = text.replace(form, "[REDACTED]")
    return text
