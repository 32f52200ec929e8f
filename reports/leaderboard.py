"""Leaderboard: several runs (checkpoints or models) and, optionally, the published numbers,
ranked per benchmark on its headline metric and overall by mean rank.

Honest by construction:

- a run's benchmark is ranked only if its trust facts say it is comparable with the paper
  (official evaluators, released model, full data, no errors: lavida_bench/trust.py); with
  `include_unofficial` it is ranked too, marked "[not comparable]" with its reasons in the notes;
- entries are labelled by run name (folder), never by model kind, so runs never merge;
- the runs ranked on a benchmark must have measured the same thing (task version, options, data,
  evaluator fingerprints, prompts); otherwise the leaderboard is refused with the differences;
- values are in the paper's units and ranked in the direction each metric declares;
- overall, each system is represented on a benchmark by that benchmark's primary variant only
  (the task's first default variant; no other variant stands in for a missing one), and the
  overall rank is a mean rank over the benchmarks every ranked system has.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lavida_bench.api import DataError
from lavida_bench.reports.layout import layout_for, order_tasks, order_variants, paper_factor, units, variant_label
from lavida_bench.reports.load import Run, has_value, load_run, run_labels
from lavida_bench.reports.published import published_entries
from lavida_bench.reports.table import Table, dumps, to_markdown
from lavida_bench.store import write_text

UNOFFICIAL = " [not comparable]"


@dataclass
class Entry:
    system: str  # run label or published model name
    variant: str | None
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    source: str = ""  # "run <folder>" or the published citation
    published: bool = False
    comparable: bool = True  # with the paper (published numbers are the paper's own)
    rank: int = 0


@dataclass
class Leaderboard:
    tables: list[Table] = field(default_factory=list)  # one per benchmark, then "overall"
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        notes = "".join(f"- {n}\n" for n in self.notes)
        return "# Leaderboard\n\n" + (notes + "\n" if notes else "") + "\n".join(to_markdown(t) for t in self.tables)

    def to_json(self) -> str:
        return dumps({"notes": self.notes, "tables": [t.to_json() for t in self.tables]})


def competition_ranks(values: list[float], lower_is_better: bool) -> list[int]:
    """1-based ranks, ties sharing the better rank ("1224")."""
    key = [(v if lower_is_better else -v) for v in values]
    return [1 + sum(1 for other in key if other < k) for k in key]


def run_entries(run: Run, task: str) -> list[Entry]:
    """Every variant of the run with a headline value, in the paper's units."""
    name = run.headline(task)
    comparable = bool(run.task_trust(task).get("comparable_with_paper"))
    out = []
    for v in order_variants(run.variants(task)):
        m = run.metric(task, v, name) if name else None
        if not has_value(m):
            continue
        s = paper_factor(m)
        out.append(Entry(run.label, v, m["value"] * s, m["ci_low"] * s, m["ci_high"] * s, m["n"],
                         f"run {run.root}", comparable=comparable))
    return out


def published_for(task: str, metric: str) -> list[Entry]:
    return [Entry(p.model, p.variant, p.value, source=p.citation, published=True)
            for p in published_entries() if p.benchmark == task and p.metric == metric]


def system_name(e: Entry) -> str:
    return e.system + (" (published)" if e.published else "") + ("" if e.comparable else UNOFFICIAL)


def benchmark_board(task: str, metric: str, facts: dict, entries: list[Entry]) -> Table:
    lay = layout_for(task)
    lower = facts.get("direction") == "lower"
    entries = sorted(entries, key=lambda e: e.value, reverse=not lower)
    for e, r in zip(entries, competition_ranks([e.value for e in entries], lower)):
        e.rank = r
    header = ["rank", "system", "variant", f"{lay.label(metric)} ({units(facts)})", "95% CI", "n", "source"]
    rows = [[str(e.rank), system_name(e), variant_label(e.variant) if e.variant else "–", lay.fmt(e.value),
             f"[{lay.fmt(e.ci_low)}, {lay.fmt(e.ci_high)}]" if e.ci_low is not None else "–",
             str(e.n) if e.n is not None else "–", e.source] for e in entries]
    records = [{"benchmark": task, "metric": metric, "units": units(facts), **vars(e)} for e in entries]
    notes = [f"{'lower' if lower else 'higher'} is better"]
    return Table(f"leaderboard_{task}", f"{lay.title}: {lay.label(metric)}", header, rows, records, notes)


def primary_variant(task: str) -> str:
    """The variant that represents a system on a benchmark overall (the task's first default)."""
    from lavida_bench.tasks import TASKS

    return TASKS.get(task).variants[0] if task in TASKS else "plain"


def primary(task: str, entries: list[Entry]) -> dict[str, Entry]:
    """Each system's entry for the benchmark's primary variant (baselines: their only entry)."""
    want = primary_variant(task)
    return {system_name(e): e for e in entries if e.variant in (want, None)}


def overall_board(per_task: dict[str, tuple[dict, list[Entry]]]) -> Table:
    reps = {task: primary(task, entries) for task, (_, entries) in per_task.items()}
    systems = list(dict.fromkeys(system_name(e) for _, entries in per_task.values() for e in entries))
    runs = {name for r in reps.values() for name, e in r.items() if not e.published}  # runs set the benchmarks
    tasks = [t for t in per_task if all(name in reps[t] for name in runs)]
    ranked = [name for name in systems if all(name in reps[t] for t in tasks)]
    ranks: dict[str, dict[str, int]] = {name: {} for name in ranked}
    for task in tasks:
        lower = per_task[task][0].get("direction") == "lower"
        for name, r in zip(ranked, competition_ranks([reps[task][n].value for n in ranked], lower)):
            ranks[name][task] = r
    summary = sorted((sum(r.values()) / len(r), name) for name, r in ranks.items() if r)
    header = ["rank", "system", "mean rank"] + [layout_for(t).title.split(" ")[0] for t in tasks]
    rows = [[str(pos), name, f"{mean:.2f}"] + [str(ranks[name][t]) for t in tasks]
            for pos, (mean, name) in enumerate(summary, start=1)]
    records = [{"rank": pos, "system": name, "mean_rank": mean, "ranks": ranks[name]}
               for pos, (mean, name) in enumerate(summary, start=1)]
    left_out = [n for n in systems if n not in ranked]
    notes = [f"mean rank over the {len(tasks)} benchmark(s) every ranked system has: {', '.join(tasks) or 'none'}; "
             "each system on its primary variant only"]
    notes += [f"not ranked overall (lacks one of those benchmarks): {', '.join(left_out)}"] if left_out else []
    return Table("leaderboard_overall", "Overall (mean rank over shared benchmarks)", header, rows, records, notes)


def measured_differently(runs: list[Run], task: str) -> list[str]:
    """Why the runs that have `task` did not measure the same thing (empty: they did): task
    version, options and data, evaluator fingerprints, and prompts of shared variants."""
    from lavida_bench.backends import strip_fields
    from lavida_bench.reports.compare import diff_dicts, prompt_differences, strip_location, task_info

    with_task = [r for r in runs if task in r.metrics]
    out = []
    for other in with_task[1:]:
        first = with_task[0]
        kinds = set(first.task_trust(task).get("evaluators") or []) | set(other.task_trust(task).get("evaluators") or [])
        fp = lambda run: {k: strip_fields(v) for k, v in (run.manifest.get("backends") or {}).items() if k in kinds}
        a, b = task_info(first).get(task, {}), task_info(other).get(task, {})
        where = f"{task}: {first.label} vs {other.label}:"
        out += [f"{where} {d}" for d in diff_dicts("task", {k: a.get(k) for k in ("version", "options")},
                                                  {k: b.get(k) for k in ("version", "options")})]
        out += [f"{where} {d}" for d in diff_dicts("data", strip_location(a.get("data")), strip_location(b.get("data")))]
        out += [f"{where} {d}" for d in diff_dicts("evaluators", fp(first), fp(other))]
        for v in [v for v in first.variants(task) if v in other.variants(task)]:
            out += [f"{where} {d}" for d in prompt_differences(first, other, task, v)]
    return out


def leaderboard(runs: Sequence[str | Path | Run], include_published: bool = True,
                include_unofficial: bool = False) -> Leaderboard:
    """Rank runs (and the published numbers) per benchmark and overall. Benchmarks of runs not
    comparable with the paper are left out (listed in the notes) unless `include_unofficial`;
    runs that measured a benchmark differently are refused (DataError)."""
    paths = [r.root if isinstance(r, Run) else Path(r) for r in runs]
    labels = run_labels(paths)
    loaded = [r if isinstance(r, Run) else load_run(r, label) for r, label in zip(runs, labels)]
    for run, label in zip(loaded, labels):
        run.label = label
    board = Leaderboard()
    per_task: dict[str, tuple[dict, list[Entry]]] = {}
    for task in order_tasks(list(dict.fromkeys(t for r in loaded for t in r.metrics))):
        entries, ranked = [], []
        for run in loaded:
            found = run_entries(run, task)
            if found and not found[0].comparable and not include_unofficial:
                board.notes.append(f"{run.label} left out of {task} (not comparable with the paper: "
                                   f"{'; '.join(run.task_trust(task).get('reasons', []))}); "
                                   "--include-unofficial ranks it, marked")
                continue
            entries += found
            ranked += [run] if found else []
        problems = measured_differently(ranked, task)
        if problems:
            raise DataError("runs that measured a benchmark differently cannot be ranked together:\n  "
                            + "\n  ".join(problems))
        metric, facts = headline_of(loaded, task)
        if metric and include_published:
            entries += published_for(task, metric)
        if metric and entries:
            per_task[task] = (facts, entries)
            board.tables.append(benchmark_board(task, metric, facts, entries))
    board.tables.append(overall_board(per_task))
    return board


def headline_of(runs: list[Run], task: str) -> tuple[str | None, dict]:
    """The task's declared headline metric and its facts (direction, units), from any run."""
    for run in runs:
        facts = run.headline_metric(task)
        if facts:
            return run.headline(task), facts
    return None, {}


def write_leaderboard(board: Leaderboard, out_dir: Path) -> list[Path]:
    """leaderboard.md and leaderboard.json in `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "leaderboard.md", out_dir / "leaderboard.json"
    write_text(md, board.to_markdown())  # atomic, like every report file
    write_text(js, board.to_json())
    return [md, js]
