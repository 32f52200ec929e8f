"""Reports read run folders (never write into their records) and render what a run found."""
from lavida_bench.reports.summary import write_report

__all__ = ["write_report"]
