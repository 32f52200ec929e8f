"""Benchmark adapters, registered by name (imported lazily, so one task's heavy imports never
slow down or break another's). A task's name is its module's name (`Task.name`), stated here
once; the registry refuses a class that is not a `Task` or that names itself differently."""
from __future__ import annotations

from lavida_bench.registry import Registry
from lavida_bench.tasks.base import Task

_CLASSES = {"geneval": "GenEval", "dpg_bench": "DPGBench", "fid30k": "FID30k", "imgedit": "ImgEdit",
            "refcoco": "RefCOCO", "mmmu": "MMMU", "chartqa": "ChartQA"}
TASKS: Registry[type[Task]] = Registry(
    "task", {name: f"lavida_bench.tasks.{name}:{cls}" for name, cls in _CLASSES.items()}, base=Task)

__all__ = ["TASKS", "Task"]
