"""Published numbers (Lavida-O and baselines), each with its source.

The data lives in `published.json` next to this module. Values are in the units the papers
print; a run's metric converts to them with its declared `paper_factor` (`MetricSpec`, lavida_bench/api.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from lavida_bench.api import DataError

FIELDS = ("benchmark", "metric", "model", "variant", "value", "source", "ref")
LAVIDA_O = "Lavida-O"


@dataclass(frozen=True)
class Published:
    """One published number. `variant` is the Lavida-O variant it belongs to (None: a baseline)."""

    benchmark: str
    metric: str
    model: str
    variant: str | None
    value: float
    source: str
    ref: str

    @property
    def citation(self) -> str:
        """User-facing provenance: who published it, where (paper and table)."""
        return f"{published_sources().get(self.source, self.source)}, {self.ref}"


def parse_published(data: Any, where: str) -> tuple[list[Published], dict[str, str]]:
    """Validate the published-numbers document; every entry must name its source."""
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise DataError(f"{where}: expected an object with an 'entries' list")
    sources = data.get("sources", {})
    out = []
    for i, e in enumerate(data["entries"]):
        missing = [f for f in FIELDS if not isinstance(e, dict) or f not in e]
        if missing:
            raise DataError(f"{where}: entry {i}: missing field(s) {', '.join(missing)}")
        if not isinstance(e["value"], (int, float)):
            raise DataError(f"{where}: entry {i}: field 'value' is not a number")
        if e["source"] not in sources:
            raise DataError(f"{where}: entry {i}: source {e['source']!r} is not described under 'sources'")
        out.append(Published(**{f: e[f] for f in FIELDS}))
    return out, dict(sources)


@lru_cache(maxsize=4)
def load_published(path: str | None = None) -> tuple[tuple[Published, ...], tuple[tuple[str, str], ...]]:
    """(entries, sources) from `path` or the packaged published.json."""
    if path is None:
        text = resources.files("lavida_bench.reports").joinpath("published.json").read_text(encoding="utf-8")
        where = "lavida_bench/reports/published.json"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), path
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: not valid JSON ({err})") from err
    entries, sources = parse_published(data, where)
    return tuple(entries), tuple(sources.items())


def published_entries() -> list[Published]:
    return list(load_published()[0])


def published_sources() -> dict[str, str]:
    return dict(load_published()[1])


def lavida_number(benchmark: str, metric: str, variant: str) -> Published | None:
    """The paper's Lavida-O number for this benchmark/metric/variant, if one was published."""
    for p in published_entries():
        if (p.model == LAVIDA_O and p.benchmark == benchmark and p.metric == metric
                and p.variant == variant):
            return p
    return None
