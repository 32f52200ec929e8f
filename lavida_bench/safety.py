"""Trust boundaries: paths named inside records, and secrets in anything the harness writes.

Dataset records may name files (images, sources). A record is data, not a capability: a path
that is absolute or climbs out of the dataset folder is refused, so a crafted dataset cannot
make the harness read arbitrary files. Secrets (API keys) only ever come from the environment;
`redact` removes their values from every string of an object before it is logged or written.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

from lavida_bench.api import DataError

# Environment variables whose values are secrets: any name that contains one of these parts,
# anywhere and in any case: OPENAI_API_KEY, HF_TOKEN, CLIENTSECRET, MY_SECRETS, SECRETKEY,
# DBPASSWORD, DB_PASS, GOOGLE_APPLICATION_CREDENTIALS, JUDGE_AUTH. A wide net on purpose: a
# false match (MONKEY, GIT_AUTHOR_NAME) only hides that value in what the harness writes, a miss
# leaks a key. README.md ("Secrets") states the same list; a test keeps the two equal.
SECRET_NAME_PARTS = ("KEY", "TOKEN", "SECRET", "PASS", "CREDENTIAL", "AUTH")
MIN_SECRET_LEN = 8  # shorter values would redact ordinary words and numbers; real keys are longer
REDACTED = "[REDACTED]"
# Variables whose values the harness itself sends as credentials, whatever their names
# (the judge's backends.judge_api_key_env); filled by `declare_credential`.
CREDENTIAL_VARIABLES: set[str] = set()

T = TypeVar("T")


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


def declare_credential(variable: str) -> None:
    """Treat `variable`'s value as a secret from now on, whatever its name: the harness sends it
    to a server (a judge's API key), so it must never appear in a file or a log."""
    if variable:
        CREDENTIAL_VARIABLES.add(variable)


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return name in CREDENTIAL_VARIABLES or any(part in upper for part in SECRET_NAME_PARTS)


def secret_values() -> list[str]:
    """Current secret values, longest first (a secret that contains another goes whole)."""
    values = {v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def _secret_forms() -> list[str]:
    """Each secret as written raw, JSON-escaped and repr-escaped (a log line may quote a string
    that holds a key with a quote or backslash), longest first."""
    forms = {form for value in secret_values()
             for form in (value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
                          repr(value)[1:-1])}
    return sorted(forms, key=len, reverse=True)


def redact(value: T) -> T:
    """`value` with every secret replaced by [REDACTED] in each string it holds, at any depth
    (dict keys and values, list and tuple items). Numbers, booleans and None are left alone.
    Apply it to objects before they are serialized, never to serialized JSON: its syntax and
    numbers (a seed that contains a numeric secret) must come out intact. Plain text (a message,
    a log line) is a string like any other."""
    secrets = _secret_forms()
    return _redact(value, secrets) if secrets else value


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {_redact(k, secrets): _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v, secrets) for v in value)
    return value
