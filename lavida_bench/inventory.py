"""`lavida-bench ls`: which run folders exist under a folder (at any depth) and how complete
each task/variant is."""
from __future__ import annotations

from pathlib import Path

from lavida_bench.store import RunStore, read_json


def run_folders(root: Path) -> list[Path]:
    """Every folder under `root` (itself included) that holds a manifest.json; the demo nests
    its runs (runs/demo/lavida_o, runs/demo/constant), so the search is recursive."""
    if (root / "manifest.json").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("manifest.json"))


def describe_runs(root: Path) -> str:
    runs = run_folders(root)
    if not runs:
        return f"no run folders under {root}"
    lines = []
    for run in runs:
        manifest = read_json(run / "manifest.json")
        expected = {t["name"]: t["samples"] for t in manifest.get("tasks", [])}
        lines.append(f"{run}  model={manifest.get('model', {}).get('name')}  created={manifest.get('created')}")
        store = RunStore(run)
        for task, variant in store.task_variants():
            outputs = store.outputs(task, variant)
            ok = sum(1 for r in outputs.values() if r.get("status") == "ok")
            err = len(outputs) - ok
            scored = sum(1 for r in store.scores(task, variant).values() if r.get("status") == "ok")
            total = expected.get(task, "?")
            lines.append(f"  {task:<10} {variant:<13} generated {ok}/{total}  errors {err}  scored {scored}")
    return "\n".join(lines)
