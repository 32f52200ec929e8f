"""Read-only access to one run folder for the reports.

Reports never write into a run's records: they read the manifest, metrics.json, the per-sample
output and score records and any speed-suite rows, and turn them into tables, verdicts and pages.
Every malformed file is refused with a `DataError` naming the file (and record and field where
there is one), so a broken run never renders as a plausible-looking table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from lavida_bench.api import DataError, StoreError
from lavida_bench.jsonfile import read_json_file
from lavida_bench.store import RunStore, read_jsonl

MANIFEST = "manifest.json"
METRICS = "metrics.json"
SPEED_DIR = "speed"
METRIC_FIELDS = ("value", "ci_low", "ci_high", "n")
SPEC_FIELDS = ("direction", "scale", "headline", "min_n", "tolerance")
METRICS_FORMAT = "lavida-bench/metrics/2"  # lavida_bench/scoring.py


def check_metrics(path: Path, doc: Any) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Validate metrics.json (format in lavida_bench/scoring.py): every metric has its value
    fields and the facts its task declared. Returns (task entries, trust facts)."""
    if not isinstance(doc, dict) or doc.get("format") != METRICS_FORMAT:
        raise DataError(f"{path}: not a {METRICS_FORMAT} document (an older run? re-score it with "
                        f"`lavida-bench score {path.parent}`)")
    metrics, trust = doc.get("tasks"), doc.get("trust")
    if not isinstance(metrics, dict) or not isinstance(trust, dict):
        raise DataError(f"{path}: fields 'tasks' and 'trust' must be objects")
    for task, variants in metrics.items():
        if not isinstance(variants, dict):
            raise DataError(f"{path}: task {task!r}: expected an object of variants")
        for variant, entry in variants.items():
            where = f"{path}: {task}/{variant}"
            if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict):
                raise DataError(f"{where}: field 'metrics' missing or not an object")
            for name, m in entry["metrics"].items():
                check_metric(f"{where}: metric {name!r}", m)
            if not isinstance(entry.get("counts", {}), dict):
                raise DataError(f"{where}: field 'counts' is not an object")
    return metrics, trust


def check_metric(where: str, m: Any) -> None:
    missing = [k for k in METRIC_FIELDS + SPEC_FIELDS if not isinstance(m, dict) or k not in m]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    bad = [k for k in METRIC_FIELDS if m[k] is not None and not isinstance(m[k], (int, float))]
    if bad:
        raise DataError(f"{where}: field(s) {', '.join(bad)} not numeric")
    if m["direction"] not in ("higher", "lower", "diagnostic"):
        raise DataError(f"{where}: field 'direction' must be higher, lower or diagnostic, got {m['direction']!r}")


@dataclass
class Run:
    """One run folder, loaded lazily. `label` names the run in multi-run tables."""

    root: Path
    manifest: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    label: str = ""
    trust: dict[str, Any] = field(default_factory=dict)  # metrics.json "trust" (lavida_bench/trust.py)
    _records: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False)
    _scores: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False)
    _ok: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False)

    @property
    def store(self) -> RunStore:
        return RunStore(self.root)

    def tasks(self) -> list[str]:
        """Tasks with metrics or records, in metrics.json order then folder order."""
        names = list(self.metrics)
        names += [t for t, _ in self.store.task_variants() if t not in names]
        return list(dict.fromkeys(names))

    def variants(self, task: str) -> list[str]:
        names = list(self.metrics.get(task, {}))
        names += [v for t, v in self.store.task_variants() if t == task and v not in names]
        return names

    def metric(self, task: str, variant: str, name: str) -> dict[str, Any] | None:
        return self.metrics.get(task, {}).get(variant, {}).get("metrics", {}).get(name)

    def headline(self, task: str) -> str | None:
        """The metric the task declared as its headline (None if the run has none)."""
        for entry in self.metrics.get(task, {}).values():
            for name, m in entry.get("metrics", {}).items():
                if m.get("headline"):
                    return name
        return None

    def headline_metric(self, task: str) -> dict[str, Any] | None:
        """The headline's stored entry in the first variant that has it: its facts (direction,
        units, paper factor) are the same in every variant."""
        name = self.headline(task)
        if name is None:
            return None
        return next((m for v in self.variants(task) if (m := self.metric(task, v, name))), None)

    def task_trust(self, task: str) -> dict[str, Any]:
        """{"comparable_with_paper": bool, "reasons": [...]} of one task (not comparable if unknown)."""
        return (self.trust.get("tasks") or {}).get(task) or {"comparable_with_paper": False,
                                                             "reasons": ["no trust facts for this task"]}

    def counts(self, task: str, variant: str) -> dict[str, int]:
        return self.metrics.get(task, {}).get(variant, {}).get("counts", {})

    def outputs(self, task: str, variant: str) -> dict[str, dict[str, Any]]:
        """Output records by sample id (merged file and any rank shards)."""
        key = (task, variant)
        if key not in self._records:
            try:
                self._records[key] = self.store.outputs(task, variant)
            except StoreError as err:
                raise DataError(str(err)) from err
            except KeyError as err:
                raise DataError(f"{self.store.records_dir(task, variant)}: a record lacks field 'id'") from err
        return self._records[key]

    def scores(self, task: str, variant: str) -> dict[str, dict[str, Any]]:
        """Score records by sample id."""
        key = (task, variant)
        if key not in self._scores:
            path = self.store.stage_path(task, variant, "scores")
            try:
                rows = read_jsonl(path)[0]
            except StoreError as err:
                raise DataError(str(err)) from err
            for i, r in enumerate(rows):
                if "id" not in r:
                    raise DataError(f"{path}: record {i + 1}: field 'id' missing")
            self._scores[key] = {r["id"]: r for r in rows}
        return self._scores[key]

    def ok_scores(self, task: str, variant: str) -> dict[str, dict[str, Any]]:
        """Per-sample score dicts of samples whose output and score are both ok (what
        lavida_bench/scoring.py aggregates); built once per pair (compare asks once per metric)."""
        key = (task, variant)
        if key not in self._ok:
            outputs = self.outputs(task, variant)
            self._ok[key] = {i: s["scores"] for i, s in self.scores(task, variant).items()
                             if s.get("status") == "ok" and outputs.get(i, {}).get("status") == "ok"
                             and isinstance(s.get("scores"), dict)}
        return self._ok[key]

    @cached_property
    def speed_rows(self) -> list[dict[str, Any]]:
        """Rows of RUN/speed/*.json (speed suite), each tagged with the file it came from."""
        rows: list[dict[str, Any]] = []
        for path in sorted((self.root / SPEED_DIR).glob("*.json")):
            data = read_json_file(path, DataError, strict=True)
            if isinstance(data, dict) and "cases" in data:  # the speed suite's speed.json
                data = {"rows": suite_rows(data)}
            items = data.get("rows") if isinstance(data, dict) else data
            if not isinstance(items, list):
                raise DataError(f"{path}: expected a list of rows (or an object with 'rows')")
            for i, row in enumerate(items):
                if not isinstance(row, dict):
                    raise DataError(f"{path}: row {i}: expected an object")
                rows.append({**row, "_file": path.name})
        return rows

    @property
    def model_name(self) -> str:
        model = self.manifest.get("model", {})
        return str(model.get("name") or model.get("kind") or self.manifest.get("config", {}).get("model", {}).get("kind", "?"))

    def variant_options(self, variant: str) -> dict[str, Any]:
        """The variant's resolved options from the manifest's config (plan, reflect_rounds, steps...)."""
        return self.manifest.get("config", {}).get("variants", {}).get(variant, {}) or {}


def has_value(metric: dict[str, Any] | None) -> bool:
    """A stored metric with a number (a metric over no samples is NaN, or null once written)."""
    value = (metric or {}).get("value")
    return isinstance(value, (int, float)) and not math.isnan(value)


def load_run(root: str | Path, label: str | None = None) -> Run:
    """Load a run folder (manifest required; metrics.json optional until scored)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected a run folder with manifest.json)")
    manifest = read_json_file(root / MANIFEST, DataError, strict=True, want_object=True,
                              expected="the run's manifest (a JSON object)")
    metrics_path = root / METRICS
    metrics, trust = {}, {}
    if metrics_path.exists():  # optional until the run is scored
        metrics, trust = check_metrics(metrics_path, read_json_file(metrics_path, DataError, strict=True))
    return Run(root=root, manifest=manifest, metrics=metrics, label=label or root.name, trust=trust)


def run_labels(roots: list[Path]) -> list[str]:
    """Distinct labels for several runs: folder names, extended with parents where they clash."""
    labels = [r.name for r in roots]
    if len(set(labels)) == len(labels):
        return labels
    return [f"{r.parent.name}/{r.name}" if labels.count(r.name) > 1 else r.name for r in roots]


def suite_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten the speed suite's speed.json (lavida_bench.speed) into table rows: one per measured
    case and batch size, then one per side-by-side comparison."""
    device = (data.get("machine") or {}).get("device")
    rows = []
    for c in data.get("cases", []):
        res = f" @{c['resolution']}px" if c.get("resolution") else ""
        rows.append({"capability": c.get("capability"), "setting": f"{c.get('case')}{res}",
                     "batch_size": c.get("batch"), "median_s": (c.get("latency_s") or {}).get("median"),
                     "nfe": c.get("nfe"), "peak_memory_bytes": c.get("peak_memory_bytes"),
                     "samples_per_s": c.get("samples_per_s"),
                     "measured_over_floor": c.get("measured_over_floor"), "device": device})
    for key, entry in (data.get("comparisons") or {}).items():
        for comp in (entry if isinstance(entry, list) else [entry]):  # a list: one per batch size
            rows.append(comparison_row(key, comp, device))
    return rows


def comparison_row(key: str, comp: dict[str, Any], device: str | None) -> dict[str, Any]:
    labels = comp.get("labels") or [None, None]
    base, ours = comp.get(labels[0]) or {}, comp.get(labels[-1]) or {}
    return {"capability": "comparison", "setting": f"{key}: {labels[-1]} vs {labels[0]}",
            "batch_size": ours.get("batch"), "median_s": (ours.get("latency_s") or {}).get("median"),
            "baseline_s": (base.get("latency_s") or {}).get("median"), "nfe": ours.get("nfe"),
            "speedup": comp.get("speedup"), "equal_outputs": comp.get("equal_outputs"), "device": device}
