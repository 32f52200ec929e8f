"""What must not depend on how a run got done, plus the structural audit of the folder."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lavida_bench.store import RunStore, audit, stable_snapshot


def snapshot(run: Path) -> dict[str, Any]:
    """The run's stable snapshot (store.stable_snapshot), after checking the folder is sound."""
    store = RunStore(run)
    problems = audit(store)
    assert not problems, problems
    shot = stable_snapshot(store)
    assert "metrics.json" in shot
    return shot


def ids(run: Path, task: str, variant: str = "plain") -> list[str]:
    """Ids of the merged outputs file in file order (sorted, each once, when the run is sound)."""
    lines = (run / "records" / task / variant / "outputs.jsonl").read_text().splitlines()
    return [json.loads(line)["id"] for line in lines]
