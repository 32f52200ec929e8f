"""`lavida-bench tasks`: every registered task with its variants, data layout and evaluator.

The per-benchmark facts (where `tasks.<name>.data` must point and which evaluator produces the
official number) are spelled out in docs/datasets.md; this table is the one-line summary of it.
A task registered by a user shows its class docstring's first line instead.
"""
from __future__ import annotations

from dataclasses import dataclass

from lavida_bench.tasks import TASKS


@dataclass(frozen=True)
class Entry:
    data: str  # what `tasks.<name>.data` holds
    evaluator: str  # what scores it officially (and the backend kinds it needs here)


BUILT_IN: dict[str, Entry] = {
    "geneval": Entry("evaluation_metadata.jsonl (djghosh13/geneval prompts/)",
                     "Mask2Former Swin-S + CLIP ViT-L/14 (backends.detector, backends.color)"),
    "dpg_bench": Entry("dpg_bench.csv (TencentQQGYLab/ELLA dpg_bench/)",
                       "mPLUG-large VQA (backends.vqa)"),
    "fid30k": Entry("meta_data.json + <category>/<id>.jpg (playgroundai/MJHQ-30K)",
                    "clean-fid Inception, MJHQ-30K statistics (backends.inception, fid_reference)"),
    "imgedit": Entry("singleturn.json + prompts.json + source images (PKU-YuanGroup/ImgEdit Benchmark/Basic)",
                     "GPT-4o judge (backends.judge)"),
    "refcoco": Entry("RefCOCO/, RefCOCOplus/, RefCOCOg/ parquet splits (lmms-lab/RefCOCO*)",
                     "Precision@0.5, box IoU (no model)"),
    "mmmu": Entry("validation-*.parquet (lmms-lab/MMMU)", "MMMU answer parser, lmms-eval rules (no model)"),
    "chartqa": Entry("test/test_human.json, test/test_augmented.json, test/png/ (vis-nlp/ChartQA)",
                     "relaxed accuracy, lmms-eval rules (no model)"),
}


def describe_task(name: str) -> dict[str, str]:
    cls = TASKS.get(name)
    entry = BUILT_IN.get(name)
    doc = (cls.__doc__ or "").strip().splitlines()
    return {"task": name, "capability": str(cls.capability), "variants": ",".join(cls.variants),
            "data": entry.data if entry else (doc[0] if doc else "see the task's docstring"),
            "evaluator": entry.evaluator if entry else "-"}


def tasks_table() -> str:
    """One row per registered task, columns aligned for a terminal."""
    rows = [describe_task(name) for name in TASKS.names()]
    columns = ["task", "capability", "variants", "data", "evaluator"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines + ["", "data layouts and official sources: docs/datasets.md"])
