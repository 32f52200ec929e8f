"""Reports read run folders and turn them into what users take away: paper-layout tables,
the planning/reflection cost table, regression verdicts, leaderboards, plots and an HTML page.

Entry points (the CLI's report / compare / leaderboard subcommands call these):

- `write_report(run_dir, out_dir=None)` -> [report.md, report.html, report/ folder]
- `compare(base_run, new_run, tolerance=None, gated=None, direction=None)` -> `CompareResult`
  (`.summary()`, `.to_markdown()`, `.to_json()`, `.exit_code()`: 0 ok, 1 gated regression or NEW
  incomplete, 2 not comparable); overrides are {"task:variant:metric" pattern: value}, a gate
  matching no metric raises `UsageError`
- `write_comparison(result, out_dir)` -> [compare.md, compare.json, compare.html]
- `leaderboard(runs, include_published=True, include_unofficial=False)` -> `Leaderboard`
  (`.to_markdown()`, `.to_json()`)
- `write_leaderboard(board, out_dir)` -> [leaderboard.md, leaderboard.json]
"""
from lavida_bench.reports.compare import CompareResult, compare, exit_code, write_comparison
from lavida_bench.reports.leaderboard import Leaderboard, leaderboard, write_leaderboard
from lavida_bench.reports.summary import write_report

__all__ = [
           "CompareResult",
           "Leaderboard",
           "compare",
           "exit_code",
           "leaderboard",
           "write_comparison",
           "write_leaderboard",
           "write_report",
]
