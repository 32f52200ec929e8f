"""Reading one JSON file, refused in one family of messages.

Checkpoint folders, benchmark data, run folders and the reports all read JSON files that a user
may have damaged, cut short or never supplied. Each caller keeps its own error class (its callers
and the CLI catch that class), but the refusal reads the same everywhere: the file, what was
wrong with it (missing; unreadable, with the OS's reason; not UTF-8, with the byte offset; not
valid JSON, with line and column; the wrong top-level type) and, when the caller says, what the
file should hold:

    <path>: not valid JSON (Expecting value at line 3 column 9); expected <what it should hold>
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal, overload

# A JSON string token, or one of the constants Python's json accepts but JSON does not.
_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')


class _Constant(Exception):
    """Raised by `parse_constant` in strict mode to stop the parse at NaN/Infinity."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def json_type(value: Any) -> str:
    """How a refusal names a parsed value's JSON type ("an array", "null", ...)."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


@overload
def read_json_file(path: Path, error: type[Exception], *, expected: str | None = ...,
                   strict: bool = ..., want_object: Literal[True]) -> dict[str, Any]: ...


@overload
def read_json_file(path: Path, error: type[Exception], *, expected: str | None = ...,
                   strict: bool = ..., want_object: bool = ...) -> Any: ...


def read_json_file(path: Path, error: type[Exception], *, expected: str | None = None,
                   strict: bool = False, want_object: bool = False) -> Any:
    """The parsed content of the UTF-8 JSON file `path`; any fault is an `error` naming the file
    and the fault, followed by "; expected <expected>" when given.

    `strict` refuses NaN, Infinity and -Infinity, which Python's json reads but JSON does not
    have (a stored metric without a value is null with a reason). `want_object` refuses any
    top level but an object (without `expected`, the refusal expects "a JSON object")."""
    if want_object and expected is None:
        expected = "a JSON object"
    tail = f"; expected {expected}" if expected else ""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as err:
        raise error(f"{path}: missing{tail}") from err
    except OSError as err:  # a folder, no permission, an I/O error
        raise error(f"{path}: cannot be read ({err.strerror or err}){tail}") from err
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (bad byte at offset {err.start}){tail}") from err
    try:
        value = json.loads(text, parse_constant=_refuse_constant) if strict else json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{path}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno}){tail}") from err
    except _Constant as err:
        where = json.JSONDecodeError("", text, _constant_position(text, err.name))
        raise error(f"{path}: not valid JSON ({err.name} is not a JSON value at line {where.lineno} "
                    f"column {where.colno}){tail}") from None
    if want_object and not isinstance(value, dict):
        raise error(f"{path}: holds {json_type(value)}{tail}")
    return value


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


def _constant_position(text: str, name: str) -> int:
    """Offset of the first bare `name` outside strings: the parser stopped at the first constant,
    and everything before it parsed, so string tokens there are delimited correctly."""
    for match in _STRING_OR_CONSTANT.finditer(text):
        if match.group(1) == name:
            return match.start(1)
    return 0


__all__ = ["json_type", "read_json_file"]
