"""The one validator of raw values against dataclass schemas (config and task options)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Union

import pytest

from lavida_bench.api import DataError
from lavida_bench.validate import parse_options, problems


@dataclass(frozen=True)
class Inner:
    count: int = 1


@dataclass(frozen=True)
class Schema:
    mode: Literal["a", "b"] = "a"
    size: int | None = None
    scale: float = 1.0
    names: tuple[str, ...] = ()
    limit: Optional[Union[int, float]] = None
    inner: Inner = field(default_factory=Inner)
    table: Dict[str, List[int]] = field(default_factory=dict)
    flag: bool = False

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError("scale must be > 0")


def test_every_problem_is_reported_with_its_key_path():
    raw = {"mode": "c", "size": "big", "scale": True, "names": "x", "limit": "all", "inner": {"count": 1.5, "extra": 1},
           "table": {"k": [1, "2"]}, "flag": 1, "unknown": 0}
    found = problems(Schema, raw, "opts")
    assert found == [
        "opts.unknown: unknown key (valid: mode, size, scale, names, limit, inner, table, flag)",
        "opts.mode: expected 'a' | 'b', got 'c'",
        "opts.size: expected int, got str 'big'",
        "opts.scale: expected float, got bool True",
        "opts.names: expected a list, got str 'x'",
        "opts.limit: expected int or float or null, got 'all'",
        "opts.inner.extra: unknown key (valid: count)",
        "opts.inner.count: expected int, got float 1.5",
        "opts.table.k[1]: expected int, got str '2'",
        "opts.flag: expected bool, got int 1",
    ]


def test_valid_values_pass_and_yaml_lists_fill_tuples():
    assert problems(Schema, {"mode": "b", "size": None, "scale": 2, "names": ["x"], "limit": 0.5,
                             "inner": {"count": 3}, "table": {"k": [1]}, "flag": True}, "") == []
    assert parse_options(Schema, {"names": ["x", "y"]}, "t").names == ["x", "y"]


def test_parse_options_raises_one_data_error_naming_the_task():
    with pytest.raises(DataError, match=r"^tasks\.t\.options\.mode: expected 'a' \| 'b', got 'c'; "
                                        r"tasks\.t\.options\.size: expected int, got str 'x'$"):
        parse_options(Schema, {"mode": "c", "size": "x"}, "t")
    with pytest.raises(DataError, match=r"^tasks\.t\.options: scale must be > 0$"):
        parse_options(Schema, {"scale": -1}, "t")
