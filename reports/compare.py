"""Regression comparison of two runs: is the new checkpoint better, worse, or not detectably
different, metric by metric?

Two runs are compared only if they measured the same thing: same task versions and options,
same data, same prompts for the shared samples, same evaluator fingerprints and the same
settings apart from what a comparison is about (checkpoint, seed, device, output folder, batch
size, sample limit). Otherwise `compare` refuses and lists every difference.

Comparable runs are compared on the samples both scored: per-sample differences, a paired
bootstrap CI of the metric difference (see paired.py), and a verdict against a tolerance:
"better" if the whole CI is above +tolerance, "worse" if it is below −tolerance, otherwise
"no detectable change" (both in the metric's good direction; FID is lower-is-better). A "worse"
verdict on a gated metric makes `exit_code` 1; a refusal makes it 2 (bad input), as the CLI's
exit codes say (lavida_bench/cli.py).
"""
from __future__ import annotations

import fnmatch
import html
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lavida_bench.reports.layout import layout_for, order_variants
from lavida_bench.reports.load import Run, load_run
from lavida_bench.reports.paired import find_estimator, paired_difference, unpaired_difference
from lavida_bench.reports.table import Table, dumps, to_markdown
from lavida_bench.tasks.base import DataError

BETTER, WORSE, SAME = "better", "worse", "no detectable change"
EXIT_OK, EXIT_REGRESSION, EXIT_REFUSED = 0, 1, 2
# Config keys that may differ between comparable runs (dotted paths, fnmatch patterns): what is
# being compared, where it ran, and paths whose contents are compared by fingerprint instead.
# Task settings are compared through the manifest's task entries (version, options, data
# fingerprint) and variant settings only for the variants both runs ran.
FREE_KEYS = ("name", "output", "seed", "batch_size", "model.kind", "model.checkpoint", "model.device", "speed.*",
             "backends.*_path", "backends.fid_reference", "backends.judge_cache", "backends.judge_timeout_s",
             "backends.judge_max_retries", "backends.judge_api_key_env", "backends.judge_url")
# Fingerprint fields that say where a file is, not what it holds.
LOCATION_FIELDS = {"path", "mtime"}


@dataclass
class MetricVerdict:
    task: str
    variant: str
    metric: str
    base: float  # on the shared samples
    new: float
    delta: float  # new − base
    ci_low: float
    ci_high: float
    n: int  # shared samples (paired) or the smaller run's n (unpaired)
    method: str  # "paired" or "unpaired"
    verdict: str
    gated: bool
    tolerance: float
    how: str = ""  # how the metric was rebuilt from per-sample scores

    @property
    def key(self) -> str:
        return f"{self.task}:{self.variant}:{self.metric}"


@dataclass
class CompareResult:
    base: Path
    new: Path
    differences: list[str] = field(default_factory=list)  # non-empty: the runs are not comparable
    verdicts: list[MetricVerdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(self.differences)

    @property
    def regressions(self) -> list[MetricVerdict]:
        return [v for v in self.verdicts if v.gated and v.verdict == WORSE]

    def exit_code(self) -> int:
        return exit_code(self)

    def table(self) -> Table:
        header = ["task", "variant", "metric", "base", "new", "Δ [95% CI]", "n", "method", "verdict", "gated"]
        rows = [[v.task, v.variant, v.metric, f"{v.base:.4g}", f"{v.new:.4g}",
                 f"{v.delta:+.4g} [{v.ci_low:+.4g}, {v.ci_high:+.4g}]", str(v.n), v.method,
                 v.verdict.upper() if v.verdict == WORSE else v.verdict, "yes" if v.gated else "no"]
                for v in self.verdicts]
        return Table("compare", f"Comparison: {self.base} -> {self.new}", header, rows,
                     [asdict(v) for v in self.verdicts], self.notes)

    def to_markdown(self) -> str:
        if self.refused:
            return (f"# Comparison refused: {self.base} vs {self.new}\n\nThe runs are not comparable:\n\n"
                    + "\n".join(f"- {d}" for d in self.differences) + "\n")
        head = [f"# Comparison: {self.base} -> {self.new}", ""]
        if self.regressions:
            head += ["**Regressions (gated):** " + ", ".join(v.key for v in self.regressions), ""]
        else:
            head += ["No gated metric regressed.", ""]
        return "\n".join(head) + to_markdown(self.table())

    def to_json(self) -> str:
        return dumps({"base": str(self.base), "new": str(self.new), "refused": self.refused,
                      "differences": self.differences, "exit_code": self.exit_code(),
                      "regressions": [v.key for v in self.regressions],
                      "verdicts": [asdict(v) for v in self.verdicts], "notes": self.notes})

    def to_html(self) -> str:
        from lavida_bench.reports.table import to_html

        if self.refused:
            items = "".join(f"<li>{html.escape(d)}</li>" for d in self.differences)
            return f"<h2>Comparison refused</h2><p>The runs are not comparable:</p><ul>{items}</ul>"
        return to_html(self.table())


def exit_code(result: CompareResult) -> int:
    """2 if the runs are not comparable, 1 if a gated metric got worse, else 0."""
    if result.refused:
        return EXIT_REFUSED
    return EXIT_REGRESSION if result.regressions else EXIT_OK


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted-path view of nested dicts (lists are compared whole)."""
    if not isinstance(obj, dict):
        return {prefix: obj}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def strip_location(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: strip_location(v) for k, v in obj.items() if k not in LOCATION_FIELDS}
    if isinstance(obj, list):
        return [strip_location(v) for v in obj]
    return obj


def diff_dicts(what: str, a: Any, b: Any, ignore: Sequence[str] = ()) -> list[str]:
    fa, fb = flatten(a), flatten(b)
    out = []
    for key in sorted(set(fa) | set(fb)):
        if any(fnmatch.fnmatchcase(key, p) for p in ignore):
            continue
        if fa.get(key) != fb.get(key):
            out.append(f"{what}{'.' + key if key else ''}: {short(fa.get(key))} (base) vs {short(fb.get(key))} (new)")
    return out


def short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def shared_pairs(base: Run, new: Run) -> list[tuple[str, str]]:
    """(task, variant) pairs both runs have records or metrics for."""
    pairs = []
    for task in base.tasks():
        if task in new.tasks():
            pairs += [(task, v) for v in order_variants(base.variants(task)) if v in new.variants(task)]
    return pairs


def task_info(run: Run) -> dict[str, dict[str, Any]]:
    return {t.get("name"): t for t in run.manifest.get("tasks", []) if isinstance(t, dict)}


def differences(base: Run, new: Run, ignore: Sequence[str] = ()) -> list[str]:
    """Everything that makes the two runs measure different things (empty: comparable)."""
    pairs = shared_pairs(base, new)
    tasks = list(dict.fromkeys(t for t, _ in pairs))
    out: list[str] = []
    if not pairs:
        out.append("no task/variant in common")
    bt, nt = task_info(base), task_info(new)
    for t in tasks:
        a, b = bt.get(t, {}), nt.get(t, {})
        for key in ("version", "capability"):
            if a.get(key) != b.get(key):
                out.append(f"task {t}: {key} {a.get(key)!r} (base) vs {b.get(key)!r} (new)")
        out += diff_dicts(f"task {t}: options", a.get("options") or {}, b.get("options") or {}, ignore)
        out += diff_dicts(f"task {t}: data", strip_location(a.get("data")), strip_location(b.get("data")), ignore)
    bc, nc = base.manifest.get("config", {}), new.manifest.get("config", {})
    shared_cfg = {k: v for k, v in bc.items() if k not in ("tasks", "variants")}
    new_cfg = {k: v for k, v in nc.items() if k not in ("tasks", "variants")}
    out += diff_dicts("config", shared_cfg, new_cfg, list(FREE_KEYS) + list(ignore))
    for v in dict.fromkeys(v for _, v in pairs):
        out += diff_dicts(f"config variants.{v}", bc.get("variants", {}).get(v, {}),
                          nc.get("variants", {}).get(v, {}), ignore)
    out += diff_dicts("evaluator fingerprints", strip_location(base.manifest.get("backends", {})),
                      strip_location(new.manifest.get("backends", {})), ignore)
    for t, v in pairs:
        out += prompt_differences(base, new, t, v)
    return out


def prompt_differences(base: Run, new: Run, task: str, variant: str) -> list[str]:
    """Shared samples whose prompt hash differs (the runner records prompt_sha256 per sample)."""
    a, b = base.outputs(task, variant), new.outputs(task, variant)
    changed = sorted(i for i in set(a) & set(b)
                     if a[i].get("prompt_sha256") and b[i].get("prompt_sha256")
                     and a[i]["prompt_sha256"] != b[i]["prompt_sha256"])
    if not changed:
        return []
    return [f"{task}/{variant}: prompts differ for {len(changed)} shared sample(s), e.g. {', '.join(changed[:3])}"]


def pick(value: float | Mapping[str, float], key: str, default: float = 0.0) -> float:
    """A tolerance: one number for all metrics, or {pattern: tolerance} matched on
    "task:variant:metric" (first match wins)."""
    if isinstance(value, Mapping):
        return next((float(t) for p, t in value.items() if fnmatch.fnmatchcase(key, p)), default)
    return float(value)


def is_gated(key: str, gated: Sequence[str] | None) -> bool:
    """None gates every metric; otherwise fnmatch patterns on "task:variant:metric"."""
    return gated is None or any(fnmatch.fnmatchcase(key, p) for p in gated)


def verdict(delta_lo: float, delta_hi: float, tolerance: float, lower_is_better: bool) -> str:
    lo, hi = (-delta_hi, -delta_lo) if lower_is_better else (delta_lo, delta_hi)
    if lo > tolerance:
        return BETTER
    if hi < -tolerance:
        return WORSE
    return SAME


def compare_metric(base: Run, new: Run, task: str, variant: str, metric: str,
                   tolerance: float | Mapping[str, float], gated: Sequence[str] | None,
                   seed: int) -> MetricVerdict | None:
    bm, nm = base.metric(task, variant, metric), new.metric(task, variant, metric)
    if not bm or not nm or bm.get("value") is None or nm.get("value") is None:
        return None
    base_scores, new_scores = base.ok_scores(task, variant), new.ok_scores(task, variant)
    est = find_estimator(metric, (bm, base_scores), (nm, new_scores))
    if est is not None:
        d, method, how = paired_difference(est, base_scores, new_scores, seed), "paired", est.describe()
        if d.n == 0:
            return None
    else:
        d, method, how = unpaired_difference(bm, nm), "unpaired", "not decomposable into per-sample scores"
    key = f"{task}:{variant}:{metric}"
    tol = pick(tolerance, key)
    lower = layout_for(task).lower_is_better
    return MetricVerdict(task, variant, metric, d.base, d.new, d.delta, d.ci_low, d.ci_high, d.n, method,
                         verdict(d.ci_low, d.ci_high, tol, lower), is_gated(key, gated), tol, how)


def sample_notes(base: Run, new: Run, task: str, variant: str) -> list[str]:
    a, b = set(base.ok_scores(task, variant)), set(new.ok_scores(task, variant))
    notes = []
    if a - b or b - a:
        notes.append(f"{task}/{variant}: {len(a & b)} shared scored samples; {len(a - b)} only in base, "
                     f"{len(b - a)} only in new (compared on the shared ones)")
    eb = sum(1 for r in base.outputs(task, variant).values() if r.get("status") == "error")
    en = sum(1 for r in new.outputs(task, variant).values() if r.get("status") == "error")
    if en > eb:
        notes.append(f"{task}/{variant}: generation errors rose from {eb} to {en}")
    return notes


def compare(base_run: str | Path | Run, new_run: str | Path | Run,
            tolerance: float | Mapping[str, float] = 0.0, gated: Sequence[str] | None = None,
            *, ignore: Sequence[str] = (), seed: int = 0) -> CompareResult:
    """Compare two run folders. `tolerance`: smallest difference that counts, in the metric's
    stored units (one number or {"task:variant:metric" pattern: number}); `gated`: patterns of
    metrics whose regression fails the comparison (None: all); `ignore`: extra config/option
    key patterns allowed to differ."""
    base = base_run if isinstance(base_run, Run) else load_run(base_run)
    new = new_run if isinstance(new_run, Run) else load_run(new_run)
    result = CompareResult(base.root, new.root)
    result.differences = differences(base, new, ignore)
    if result.refused:
        return result
    for task, variant in shared_pairs(base, new):
        names = [m for m in base.metrics.get(task, {}).get(variant, {}).get("metrics", {})
                 if new.metric(task, variant, m)]
        for metric in layout_for(task).order(names):
            v = compare_metric(base, new, task, variant, metric, tolerance, gated, seed)
            if v is not None:
                result.verdicts.append(v)
        result.notes += sample_notes(base, new, task, variant)
    only_base = sorted(set(base.tasks()) - set(new.tasks()))
    only_new = sorted(set(new.tasks()) - set(base.tasks()))
    if only_base or only_new:
        result.notes.append(f"tasks not compared: only in base {only_base}, only in new {only_new}")
    return result


def write_comparison(result: CompareResult, out_dir: Path) -> list[Path]:
    """compare.md, compare.json and a self-contained compare.html (with both manifests) in
    `out_dir`; returns their paths."""
    from lavida_bench.reports.html import manifest_section, page
    from lavida_bench.reports.summary import not_meaningful

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifests = {}
    for side, root in (("base", result.base), ("new", result.new)):
        try:
            manifests[side] = load_run(root).manifest
        except DataError:
            manifests[side] = {}
    reasons = [f"{side}: {r}" for side, m in manifests.items() for r in not_meaningful(m)]
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in result.notes)
    sections = [result.to_html() + notes]
    sections += [f"<h2>{side} run: {html.escape(str(root))}</h2>" + manifest_section(manifests[side])
                 for side, root in (("base", result.base), ("new", result.new))]
    paths = [out_dir / "compare.md", out_dir / "compare.json", out_dir / "compare.html"]
    paths[0].write_text(result.to_markdown(), encoding="utf-8")
    paths[1].write_text(result.to_json(), encoding="utf-8")
    paths[2].write_text(page(f"Comparison: {result.base.name} -> {result.new.name}", reasons, sections),
                        encoding="utf-8")
    return paths
