"""Regression comparison of two runs: is the new checkpoint better, worse, or not detectably
different, metric by metric?

Two runs are compared only if they measured the same thing: same task versions and options,
same data, same prompts for the shared samples, same evaluator fingerprints and the same
settings apart from what a comparison is about (checkpoint, seed, device, output folder, batch
size, sample limit). Otherwise `compare` refuses and lists every difference (exit 2).

Every metric carries its meaning in metrics.json (its task's `MetricSpec`): which way is better
("diagnostic" for rates and timings that are not quality), its units, the smallest difference
that matters in those units, the minimum sample count for a verdict and how it decomposes into
per-sample scores. Comparable runs are compared on the samples both scored: a paired bootstrap
CI of the difference where the metric decomposes (paired.py), else from the two intervals.
Verdict: "better" / "worse" when the whole CI is beyond the tolerance in the metric's good
direction, "no detectable change" otherwise, "too few samples" below the metric's minimum n;
a diagnostic is only "changed" or not. Exit 1 when a gated metric got worse, or when NEW lacks a
task, variant, scores or samples that BASE has, or a gated headline is null; exit 2 when the
runs are not comparable or a `--gate` pattern matches no metric.
"""
from __future__ import annotations

import fnmatch
import html
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lavida_bench.api import UsageError
from lavida_bench.backends import strip_fields
from lavida_bench.reports.layout import layout_for, order_variants
from lavida_bench.reports.load import Run, has_value, load_run
from lavida_bench.reports.paired import estimator_for, paired_difference, unpaired_difference
from lavida_bench.reports.table import Table, dumps, to_markdown
from lavida_bench.store import write_text

BETTER, WORSE, SAME = "better", "worse", "no detectable change"
CHANGED, TOO_FEW = "changed", "too few samples"
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
    tolerance: float  # in the metric's own units
    direction: str  # higher | lower | diagnostic (after any override)
    scale: str  # the metric's units: 0-1, 0-100, 1-5, FID, seconds
    min_n: int
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
    problems: list[str] = field(default_factory=list)  # NEW lacks what BASE has, gated headline null
    notes: list[str] = field(default_factory=list)
    trust: dict[str, dict[str, Any]] = field(default_factory=dict)  # "base"/"new" -> trust facts
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)  # "base"/"new" -> manifest

    @property
    def refused(self) -> bool:
        return bool(self.differences)

    @property
    def regressions(self) -> list[MetricVerdict]:
        return [v for v in self.verdicts if v.gated and v.verdict == WORSE]

    def exit_code(self) -> int:
        return exit_code(self)

    def summary(self) -> list[str]:
        """The verdict in a few lines: what fails the comparison, first."""
        if self.refused:
            return [f"REFUSED (exit 2): the runs are not comparable ({len(self.differences)} difference(s))"]
        lines = [f"{'FAIL' if self.exit_code() else 'PASS'} (exit {self.exit_code()}): "
                 f"{len(self.regressions)} gated regression(s), {len(self.problems)} completeness problem(s), "
                 f"{sum(v.verdict == BETTER for v in self.verdicts)} better, "
                 f"{sum(v.verdict == TOO_FEW for v in self.verdicts)} with too few samples"]
        lines += [f"regression: {v.key} {v.delta:+.4g} [{v.ci_low:+.4g}, {v.ci_high:+.4g}] {v.scale}"
                  for v in self.regressions]
        lines += [f"problem: {p}" for p in self.problems]
        for side, facts in self.trust.items():
            if facts and not facts.get("comparable_with_paper"):
                lines.append(f"{side} run is not comparable with the paper: {'; '.join(facts.get('reasons', [])[:4])}")
        return lines

    def table(self) -> Table:
        header = ["task", "variant", "metric", "units", "better", "base", "new", "Δ [95% CI]", "n", "method",
                  "verdict", "gated"]
        rows, classes = [], []
        for v in self.verdicts:
            rows.append([v.task, v.variant, v.metric, v.scale, v.direction, f"{v.base:.4g}", f"{v.new:.4g}",
                         f"{v.delta:+.4g} [{v.ci_low:+.4g}, {v.ci_high:+.4g}]", f"{v.n} (min {v.min_n})", v.method,
                         v.verdict.upper() if v.verdict == WORSE else v.verdict, "yes" if v.gated else "no"])
            cls = {WORSE: "worse", BETTER: "better"}.get(v.verdict, "")
            classes.append([cls] * len(header))
        return Table("compare", f"Comparison: {self.base} -> {self.new}", header, rows,
                     [asdict(v) for v in self.verdicts], self.notes, classes)

    def to_markdown(self) -> str:
        head = [f"# Comparison: {self.base} -> {self.new}", ""] + [f"**{line}**" if i == 0 else f"- {line}"
                                                                   for i, line in enumerate(self.summary())] + [""]
        if self.refused:
            return "\n".join(head + ["The runs are not comparable:", ""] + [f"- {d}" for d in self.differences]) + "\n"
        return "\n".join(head) + "\n" + to_markdown(self.table())

    def to_json(self) -> str:
        return dumps({"base": str(self.base), "new": str(self.new), "refused": self.refused,
                      "differences": self.differences, "exit_code": self.exit_code(), "summary": self.summary(),
                      "regressions": [v.key for v in self.regressions], "problems": self.problems,
                      "verdicts": [asdict(v) for v in self.verdicts], "notes": self.notes, "trust": self.trust})

    def to_html(self) -> str:
        from lavida_bench.reports.table import to_html

        lines = self.summary()
        state = "fail" if self.exit_code() else "pass"
        box = (f"<div class='verdict {state}' id='verdict'><b>{html.escape(lines[0])}</b><ul>"
               + "".join(f"<li>{html.escape(x)}</li>" for x in lines[1:]) + "</ul></div>")
        if self.refused:
            items = "".join(f"<li>{html.escape(d)}</li>" for d in self.differences)
            return box + f"<h2>Comparison refused</h2><p>The runs are not comparable:</p><ul>{items}</ul>"
        return box + to_html(self.table())


def exit_code(result: CompareResult) -> int:
    """2 if the runs are not comparable, 1 if a gated metric got worse or NEW is incomplete, else 0."""
    if result.refused:
        return EXIT_REFUSED
    return EXIT_REGRESSION if result.regressions or result.problems else EXIT_OK


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
    out += diff_dicts("evaluator fingerprints", strip_fields(base.manifest.get("backends", {})),
                      strip_fields(new.manifest.get("backends", {})), ignore)
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



def pick(overrides: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    """The override for "task:variant:metric" (first matching pattern wins), else `default`."""
    return next((v for p, v in (overrides or {}).items() if fnmatch.fnmatchcase(key, p)), default)


def verdict(delta_lo: float, delta_hi: float, tolerance: float, direction: str) -> str:
    """Better/worse when the whole CI lies beyond the tolerance in the good direction; a
    diagnostic (no good direction) is only "changed" or not."""
    if direction == "diagnostic":
        return CHANGED if delta_lo > tolerance or delta_hi < -tolerance else SAME
    lo, hi = (-delta_hi, -delta_lo) if direction == "lower" else (delta_lo, delta_hi)
    if lo > tolerance:
        return BETTER
    if hi < -tolerance:
        return WORSE
    return SAME


@dataclass
class Rules:
    """How to judge metrics: per-metric overrides of tolerance and direction, and the gate."""

    tolerance: Mapping[str, float] = field(default_factory=dict)
    direction: Mapping[str, str] = field(default_factory=dict)
    gated: Sequence[str] | None = None  # None: every non-diagnostic metric

    def gates(self, key: str, direction: str) -> bool:
        if direction == "diagnostic":
            return False
        return self.gated is None or any(fnmatch.fnmatchcase(key, p) for p in self.gated)


def compare_metric(base: Run, new: Run, task: str, variant: str, metric: str, rules: Rules,
                   seed: int) -> MetricVerdict | None:
    bm, nm = base.metric(task, variant, metric), new.metric(task, variant, metric)
    if not has_value(bm) or not has_value(nm):
        return None
    base_scores, new_scores = base.ok_scores(task, variant), new.ok_scores(task, variant)
    est = estimator_for(bm)
    if est is not None:
        d, method, how = paired_difference(est, base_scores, new_scores, seed), "paired", est.describe()
        if d.n == 0:
            return None
    else:
        d, method, how = unpaired_difference(bm, nm), "unpaired", f"{bm.get('aggregation', 'statistic')}: no per-sample decomposition"
    key = f"{task}:{variant}:{metric}"
    tol = float(pick(rules.tolerance, key, bm["tolerance"]))
    direction = pick(rules.direction, key, bm["direction"])
    word = TOO_FEW if d.n < int(bm["min_n"]) else verdict(d.ci_low, d.ci_high, tol, direction)
    return MetricVerdict(task, variant, metric, d.base, d.new, d.delta, d.ci_low, d.ci_high, d.n, method, word,
                         rules.gates(key, direction), tol, direction, str(bm["scale"]), int(bm["min_n"]), how)


def completeness(base: Run, new: Run, rules: Rules) -> list[str]:
    """What NEW lacks that BASE has (tasks, variants, scores, samples), and gated null headlines."""
    out = []
    if not base.metrics:
        out.append("BASE has no scores (metrics.json): nothing to compare")
    for task in base.tasks():
        if task not in new.tasks():
            out.append(f"NEW lacks task {task}")
            continue
        for variant in order_variants(base.variants(task)):
            out += pair_completeness(base, new, task, variant, rules)
    return out


def pair_completeness(base: Run, new: Run, task: str, variant: str, rules: Rules) -> list[str]:
    where = f"{task}/{variant}"
    if variant not in new.variants(task):
        return [f"NEW lacks variant {where}"]
    if base.metrics.get(task, {}).get(variant) and not new.metrics.get(task, {}).get(variant, {}).get("metrics"):
        return [f"NEW has no scores for {where}"]
    out = []
    lost = sorted(set(base.ok_scores(task, variant)) - set(new.ok_scores(task, variant)))
    if lost:
        out.append(f"NEW lacks scores for {len(lost)} sample(s) of {where} that BASE scored, e.g. {', '.join(lost[:3])}")
    headline = base.headline(task) or new.headline(task)
    if headline and rules.gates(f"{task}:{variant}:{headline}", "higher"):
        for side, run in (("NEW", new), ("BASE", base)):
            m = run.metric(task, variant, headline)
            if m is not None and not has_value(m):
                out.append(f"{side} headline {task}:{variant}:{headline} is null ({m.get('reason', 'no value')})")
    return out


def check_gates(base: Run, rules: Rules) -> None:
    """Every gate pattern must match a gateable metric of BASE: a typo must not gate nothing."""
    keys = [(f"{t}:{v}:{m}", pick(rules.direction, f"{t}:{v}:{m}", spec.get("direction")))
            for t, variants in base.metrics.items() for v, entry in variants.items()
            for m, spec in entry.get("metrics", {}).items()]
    for pattern in rules.gated or []:
        hits = [k for k, d in keys if fnmatch.fnmatchcase(k, pattern)]
        if not hits:
            raise UsageError(f"--gate {pattern!r} matches no metric of {base.root} (patterns are task:variant:metric, "
                             f"e.g. 'geneval:*:overall'; metrics: {', '.join(k for k, _ in keys[:8])}...)")
        if all(d == "diagnostic" for k, d in keys if k in hits):
            raise UsageError(f"--gate {pattern!r} matches only diagnostic metrics ({', '.join(hits[:4])}), which "
                             f"have no better direction; add --direction '{pattern}=lower' to gate them")


def compare(base_run: str | Path | Run, new_run: str | Path | Run,
            tolerance: Mapping[str, float] | None = None, gated: Sequence[str] | None = None,
            *, direction: Mapping[str, str] | None = None, ignore: Sequence[str] = (),
            seed: int = 0) -> CompareResult:
    """Compare two run folders. `tolerance` / `direction`: {"task:variant:metric" pattern: value}
    overriding each metric's own (tolerances in the metric's units); `gated`: patterns of metrics
    whose regression fails the comparison (None: every non-diagnostic metric); `ignore`: extra
    config/option key patterns allowed to differ. A gate matching nothing raises UsageError."""
    base = base_run if isinstance(base_run, Run) else load_run(base_run)
    new = new_run if isinstance(new_run, Run) else load_run(new_run)
    rules = Rules(dict(tolerance or {}), dict(direction or {}), gated)
    check_gates(base, rules)
    result = CompareResult(base.root, new.root, trust={"base": base.trust, "new": new.trust},
                           manifests={"base": base.manifest, "new": new.manifest})
    result.differences = differences(base, new, ignore)
    if result.refused:
        return result
    result.problems = completeness(base, new, rules)
    for task, variant in shared_pairs(base, new):
        names = [m for m in base.metrics.get(task, {}).get(variant, {}).get("metrics", {})
                 if new.metric(task, variant, m)]
        for metric in layout_for(task).order(names):
            v = compare_metric(base, new, task, variant, metric, rules, seed)
            if v is not None:
                result.verdicts.append(v)
        result.notes += sample_notes(base, new, task, variant)
    only_new = sorted(set(new.tasks()) - set(base.tasks()))
    if only_new:
        result.notes.append(f"tasks only in NEW (not compared): {only_new}")
    return result


def sample_notes(base: Run, new: Run, task: str, variant: str) -> list[str]:
    a, b = set(base.ok_scores(task, variant)), set(new.ok_scores(task, variant))
    notes = []
    if b - a:
        notes.append(f"{task}/{variant}: {len(b - a)} sample(s) scored only in NEW (compared on the shared ones)")
    eb = sum(1 for r in base.outputs(task, variant).values() if r.get("status") == "error")
    en = sum(1 for r in new.outputs(task, variant).values() if r.get("status") == "error")
    if en > eb:
        notes.append(f"{task}/{variant}: generation errors rose from {eb} to {en}")
    return notes


def write_comparison(result: CompareResult, out_dir: Path) -> list[Path]:
    """compare.md, compare.json and a self-contained compare.html (verdict summary first, then
    the table with regressions highlighted, then both manifests) in `out_dir`."""
    from lavida_bench.reports.html import manifest_section, page

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in result.notes)
    sections = [result.to_html() + notes]
    sections += [f"<h2>{side} run: {html.escape(str(root))}</h2>" + manifest_section(result.manifests.get(side, {}))
                 for side, root in (("base", result.base), ("new", result.new))]
    paths = [out_dir / "compare.md", out_dir / "compare.json", out_dir / "compare.html"]
    write_text(paths[0], result.to_markdown())  # atomic: a kill never leaves half a file
    write_text(paths[1], result.to_json())
    write_text(paths[2], page(f"Comparison: {result.base.name} -> {result.new.name}", "", [], sections))
    return paths
