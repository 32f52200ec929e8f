"""The one validator of raw (YAML/JSON) values against typed dataclass schemas.

The run configuration and every task's `options` are dataclasses; a raw mapping is checked
against one here before it is built, and every mismatch is reported at once with its key path
(`tasks.geneval.options.prefix: expected str, got 3`), so a user fixes a config in one go.
Rules, the same everywhere: unknown keys are refused; `bool` is not a number; an `int` is a
`float`; a YAML list fills a `list[X]` or `tuple[X, ...]`; `Literal` lists its choices.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, TypeVar

from lavida_bench.api import DataError

T = TypeVar("T")
UNIONS = (typing.Union, types.UnionType)  # Optional[int] and int | None
SCALARS = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
}


def problems(schema: Any, value: Any, path: str) -> list[str]:
    """Every mismatch between `value` and `schema` (a dataclass or typing hint), each starting
    with its key path."""
    where = path or "<root>"
    origin, args = typing.get_origin(schema), typing.get_args(schema)
    if schema is Any:
        return []
    if origin in UNIONS:
        if value is None and type(None) in args:
            return []
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) == 1:  # Optional[X]: X's own, more precise, problems
            return problems(kinds[0], value, path)
        tried = [problems(a, value, path) for a in kinds]
        return [] if any(not t for t in tried) else [f"{where}: expected {type_name(schema)}, got {value!r}"]
    if origin is typing.Literal:
        return [] if value in args else [f"{where}: expected {type_name(schema)}, got {value!r}"]
    if schema is type(None):
        return [] if value is None else [f"{where}: expected null, got {value!r}"]
    if value is None:
        return [f"{where}: null is not allowed (expected {type_name(schema)})"]
    if dataclasses.is_dataclass(schema):
        return mapping_problems(schema, value, path)
    if origin in (dict, typing.Dict):
        if not isinstance(value, Mapping):
            return [f"{where}: expected a mapping, got {type(value).__name__}"]
        return [p for k, v in value.items() for p in problems(args[1], v, f"{path}.{k}")]
    if origin in (list, tuple, typing.List, typing.Tuple):
        if not isinstance(value, (list, tuple)):
            return [f"{where}: expected a list, got {type(value).__name__} {value!r}"]
        return [p for i, v in enumerate(value) for p in problems(args[0], v, f"{path}[{i}]")]
    ok = SCALARS.get(schema, lambda v: not isinstance(schema, type) or isinstance(v, schema))(value)
    return [] if ok else [f"{where}: expected {type_name(schema)}, got {type(value).__name__} {value!r}"]


def mapping_problems(schema: type, value: Any, path: str) -> list[str]:
    """A mapping checked field by field against a dataclass; unknown keys listed with the valid ones."""
    if not isinstance(value, Mapping):
        return [f"{path or '<root>'}: expected a mapping for {schema.__name__}, got {type(value).__name__}"]
    hints = typing.get_type_hints(schema)
    prefix = f"{path}." if path else ""
    found = [f"{prefix}{k}: unknown key (valid: {', '.join(hints) or 'none'})" for k in value if k not in hints]
    return found + [p for k, v in value.items() if k in hints for p in problems(hints[k], v, prefix + k)]


def type_name(hint: Any) -> str:
    """How a hint reads in an error: `int or null`, `'single' | 'grid'`, `list of str`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in UNIONS:
        return " or ".join(type_name(a) for a in args)
    if origin in (list, tuple, typing.List, typing.Tuple):
        return f"list of {type_name(args[0])}"
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def parse_options(schema: type[T], raw: Mapping[str, Any], task: str) -> T:
    """A task's raw `options` (config `tasks.<task>.options`) as an instance of its dataclass
    `schema`; every problem, and the schema's own range checks, as one `DataError`."""
    path = f"tasks.{task}.options"
    found = problems(schema, dict(raw), path)
    if found:
        raise DataError("; ".join(found))
    try:
        return schema(**raw)
    except ValueError as err:  # the schema's own __post_init__ range checks
        raise DataError(f"{path}: {err}") from err
