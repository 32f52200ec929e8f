"""Benchmark adapters, registered by name (imported lazily, so one task's heavy imports never
slow down or break another's)."""
from __future__ import annotations

from lavida_bench.registry import Registry
from lavida_bench.tasks.base import DataError, Metric, Sample, ScoreContext, Task, Variant

TASKS: Registry[type[Task]] = Registry("task", {
    "geneval": "lavida_bench.tasks.geneval:GenEval",
    "dpg_bench": "lavida_bench.tasks.dpg_bench:DPGBench",
    "fid30k": "lavida_bench.tasks.fid30k:FID30k",
    "imgedit": "lavida_bench.tasks.imgedit:ImgEdit",
    "refcoco": "lavida_bench.tasks.refcoco:RefCOCO",
    "mmmu": "lavida_bench.tasks.mmmu:MMMU",
    "chartqa": "lavida_bench.tasks.chartqa:ChartQA",
})

__all__ = ["TASKS", "DataError", "Metric", "Sample", "ScoreContext", "Task", "Variant"]
