"""Leaderboard: several runs (checkpoints or models) and, optionally, the published numbers,
ranked per benchmark on its headline metric and overall by mean rank.

Per benchmark every (run, variant) is an entry, as is every published number for that
benchmark's headline metric, all in the paper's units. Overall, each system (a run, or a
published model) is represented on a benchmark by its primary variant (plain, else the first in
variant order, for runs and for the paper's Lavida-O rows alike) and ranked by its mean rank
over the benchmarks it has; how many benchmarks that is is shown beside it, because a system
measured on one benchmark is not comparable to one measured on seven.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lavida_bench.reports.layout import headline_metric, layout_for, order_tasks, order_variants, variant_label
from lavida_bench.reports.load import Run, has_value, load_run, run_labels
from lavida_bench.reports.published import published_entries
from lavida_bench.reports.table import Table, dumps, to_markdown


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
    rank: int = 0


@dataclass
class Leaderboard:
    tables: list[Table] = field(default_factory=list)  # one per benchmark, then "overall"

    def to_markdown(self) -> str:
        return "# Leaderboard\n\n" + "\n".join(to_markdown(t) for t in self.tables)

    def to_json(self) -> str:
        return dumps({"tables": [t.to_json() for t in self.tables]})


def competition_ranks(values: list[float], lower_is_better: bool) -> list[int]:
    """1-based ranks, ties sharing the better rank ("1224")."""
    key = [(v if lower_is_better else -v) for v in values]
    return [1 + sum(1 for other in key if other < k) for k in key]


def run_entries(run: Run, task: str) -> list[Entry]:
    lay = layout_for(task)
    out = []
    for v in order_variants(run.variants(task)):
        available = list(run.metrics.get(task, {}).get(v, {}).get("metrics", {}))
        name = headline_metric(task, available)
        m = run.metric(task, v, name) if name else None
        if not has_value(m):
            continue
        s = lay.scale_for(name)
        out.append(Entry(run.label, v, m["value"] * s, m["ci_low"] * s, m["ci_high"] * s, m["n"],
                         f"run {run.root}"))
    return out


def published_for(task: str) -> list[Entry]:
    lay = layout_for(task)
    return [Entry(p.model, p.variant, p.value, source=p.citation, published=True)
            for p in published_entries() if p.benchmark == task and p.metric == lay.headline]


def benchmark_board(task: str, entries: list[Entry]) -> Table:
    lay = layout_for(task)
    entries = sorted(entries, key=lambda e: e.value, reverse=not lay.lower_is_better)
    for e, r in zip(entries, competition_ranks([e.value for e in entries], lay.lower_is_better)):
        e.rank = r
    header = ["rank", "system", "variant", lay.label(lay.headline), "95% CI", "n", "source"]
    rows = [[str(e.rank), system_name(e),
             variant_label(e.variant) if e.variant else "–", lay.fmt(e.value),
             f"[{lay.fmt(e.ci_low)}, {lay.fmt(e.ci_high)}]" if e.ci_low is not None else "–",
             str(e.n) if e.n is not None else "–", e.source] for e in entries]
    records = [{"benchmark": task, "metric": lay.headline, **vars(e)} for e in entries]
    notes = ["lower is better"] if lay.lower_is_better else []
    return Table(f"leaderboard_{task}", f"{lay.title}: {lay.label(lay.headline)}", header, rows, records, notes)


def system_name(e: Entry) -> str:
    return e.system + (" (published)" if e.published else "")


def primary(entries: list[Entry]) -> dict[str, Entry]:
    """Each system's representative entry: its plain variant, else its first in variant order."""
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(system_name(e), []).append(e)
    out = {}
    for name, group in groups.items():
        ordered = order_variants([e.variant for e in group if e.variant])
        out[name] = next(e for e in group if e.variant == ordered[0]) if ordered else group[0]
    return out


def overall_board(per_task: dict[str, list[Entry]]) -> Table:
    ranks: dict[str, dict[str, int]] = {}
    for task, entries in per_task.items():
        reps = primary(entries)
        names = list(reps)
        lay = layout_for(task)
        for name, r in zip(names, competition_ranks([reps[n].value for n in names], lay.lower_is_better)):
            ranks.setdefault(name, {})[task] = r
    summary = sorted(((sum(r.values()) / len(r), -len(r), name, r) for name, r in ranks.items()))
    tasks = list(per_task)
    header = ["rank", "system", "mean rank", "benchmarks"] + [layout_for(t).title.split(" ")[0] for t in tasks]
    rows, records = [], []
    for pos, (mean_rank, neg_count, name, r) in enumerate(summary, start=1):
        rows.append([str(pos), name, f"{mean_rank:.2f}", str(-neg_count)] + [str(r.get(t, "–")) for t in tasks])
        records.append({"rank": pos, "system": name, "mean_rank": mean_rank, "benchmarks": -neg_count,
                        "ranks": r})
    return Table("leaderboard_overall", "Overall (mean rank over the benchmarks each system has)", header,
                 rows, records, ["each system ranked on its plain variant where it has one"])


def leaderboard(runs: Sequence[str | Path | Run], include_published: bool = True) -> Leaderboard:
    """Rank runs (and the published numbers) per benchmark and overall."""
    paths = [r.root if isinstance(r, Run) else Path(r) for r in runs]
    labels = run_labels(paths)
    loaded = [r if isinstance(r, Run) else load_run(r, label) for r, label in zip(runs, labels)]
    for run, label in zip(loaded, labels):
        run.label = label
    tasks = order_tasks(list(dict.fromkeys(t for r in loaded for t in r.metrics)))
    per_task: dict[str, list[Entry]] = {}
    for task in tasks:
        entries = [e for r in loaded for e in run_entries(r, task)]
        if include_published:
            entries += published_for(task)
        if entries:
            per_task[task] = entries
    board = Leaderboard([benchmark_board(t, e) for t, e in per_task.items()])
    board.tables.append(overall_board(per_task))
    return board




def write_leaderboard(board: Leaderboard, out_dir: Path) -> list[Path]:
    """leaderboard.md and leaderboard.json in `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "leaderboard.md", out_dir / "leaderboard.json"
    md.write_text(board.to_markdown(), encoding="utf-8")
    js.write_text(board.to_json(), encoding="utf-8")
    return [md, js]
