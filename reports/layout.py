"""How each benchmark is laid out in the paper: presentation only.

One `Layout` per task: row order and labels (the paper's column order for that benchmark),
variant column labels and digits. What a metric *means* (which way is better, its units, the
factor to the paper's units, the headline) is not here: each task declares it once
(lavida_bench/api.py `MetricSpec`) and metrics.json carries it beside every value. Metrics a run has
that the layout does not list are still shown, after the listed ones, so nothing is silently
dropped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

VARIANT_LABELS = {
    "plain": "plain",
    "plan": "+ planning",
    "plan_reflect": "+ planning + reflection",
    "steps1": "1 step",
    "steps2": "2 steps",
    "steps4": "4 steps",
}
VARIANT_ORDER = ("plain", "plan", "plan_reflect", "steps1", "steps2", "steps4")
GENERATION_TASKS = ("geneval", "dpg_bench", "fid30k", "imgedit")


@dataclass(frozen=True)
class Layout:
    task: str
    title: str
    rows: tuple[str, ...] = ()  # preferred row order (metric names)
    labels: dict[str, str] = field(default_factory=dict)
    digits: int = 2

    def label(self, metric: str) -> str:
        return self.labels.get(metric, metric)

    def order(self, metrics: list[str]) -> list[str]:
        """Listed rows first (in paper order), then any other metric alphabetically."""
        listed = [m for m in self.rows if m in metrics]
        return listed + sorted(m for m in metrics if m not in self.rows)

    def fmt(self, value: float | None) -> str:
        if value is None or math.isnan(value):
            return "–"
        return f"{value:.{self.digits}f}"


# GenEval: six task scores + macro overall (djghosh13/geneval evaluation/summary_scores.py), printed as 0-1 fractions.
GENEVAL_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
# DPG-Bench: L1 categories + overall, stored x100 already by tasks/dpg_bench.py (ELLA compute_dpg_bench.py).
DPG_L1 = ("entity", "attribute", "relation", "global", "other")
# ImgEdit: leaderboard column order (PKU-YuanGroup/ImgEdit README); Hybrid = compose.
IMGEDIT_TYPES = ("add", "adjust", "extract", "replace", "remove", "background", "style", "compose", "action")
# RefCOCO/+/g splits as tasks/refcoco.py names them (lmms-lab/RefCOCO*), Precision@0.5 in
# percent (as the paper's table, arXiv 2509.19244).
REFCOCO_SPLITS = tuple(f"{d}/{s}" for d, splits in (("refcoco", ("val", "testA", "testB")),
                                                     ("refcoco+", ("val", "testA", "testB")),
                                                     ("refcocog", ("val", "test"))) for s in splits)
# MMMU disciplines (MMMU-Benchmark/MMMU mmmu/utils/data_utils.py); overall = instance-weighted
# accuracy in percent (lmms-eval tasks/mmmu/utils.py).
MMMU_DISCIPLINES = ("Art and Design", "Business", "Science", "Health and Medicine",
                    "Humanities and Social Science", "Tech and Engineering")

LAYOUTS: dict[str, Layout] = {
    "geneval": Layout(
        "geneval", "GenEval", GENEVAL_TAGS + ("overall",),
        {"single_object": "Single Obj.", "two_object": "Two Obj.", "counting": "Counting",
         "colors": "Colors", "position": "Position", "color_attr": "Color Attri.", "overall": "Overall"}, digits=2),
    "dpg_bench": Layout(
        "dpg_bench", "DPG-Bench", tuple(f"L1/{c}" for c in DPG_L1) + ("overall",),
        {f"L1/{c}": c.capitalize() for c in DPG_L1} | {"overall": "Overall"}, digits=1),
    "fid30k": Layout("fid30k", "FID-30k (MJHQ-30K)", ("fid",), {"fid": "FID"}, digits=2),
    "imgedit": Layout(
        "imgedit", "ImgEdit", IMGEDIT_TYPES + ("overall", "overall_items"),
        {t: t.capitalize() for t in IMGEDIT_TYPES} | {"compose": "Hybrid", "overall": "Overall",
                                                      "overall_items": "Overall (item-weighted)"}, digits=2),
    "refcoco": Layout(
        "refcoco", "RefCOCO / RefCOCO+ / RefCOCOg (Precision@0.5)",
        tuple(f"acc/{s}" for s in REFCOCO_SPLITS) + ("acc",),
        {f"acc/{s}": s.replace("refcocog", "RefCOCOg").replace("refcoco", "RefCOCO").replace("/", " ")
         for s in REFCOCO_SPLITS} | {"acc": "all splits"}, digits=1),
    "mmmu": Layout(
        "mmmu", "MMMU (val)", ("acc",) + tuple(f"acc/{d}" for d in MMMU_DISCIPLINES),
        {"acc": "Overall"} | {f"acc/{d}": d for d in MMMU_DISCIPLINES}, digits=1),
    "chartqa": Layout(
        "chartqa", "ChartQA (test, relaxed accuracy)", ("acc/human", "acc/augmented", "acc"),
        {"acc": "Overall", "acc/human": "Human", "acc/augmented": "Augmented"}, digits=1),
}


def layout_for(task: str) -> Layout:
    """The task's layout, or a plain one for tasks the paper does not print."""
    return LAYOUTS.get(task) or Layout(task, task)


def order_tasks(tasks: list[str]) -> list[str]:
    """Benchmarks in the paper's order, others after in their given order."""
    return [t for t in LAYOUTS if t in tasks] + [t for t in tasks if t not in LAYOUTS]


def variant_label(variant: str) -> str:
    return VARIANT_LABELS.get(variant, variant)


def order_variants(variants: list[str]) -> list[str]:
    known = [v for v in VARIANT_ORDER if v in variants]
    return known + [v for v in variants if v not in VARIANT_ORDER]


def paper_factor(metric: dict | None) -> float:
    """Stored value x this = the units the paper prints (declared by the task's MetricSpec)."""
    return float((metric or {}).get("paper_factor") or 1.0)


def units(metric: dict | None) -> str:
    """The units a metric is shown in: the paper's (percent where the paper prints percent)."""
    scale = str((metric or {}).get("scale", ""))
    return "%" if scale == "0-1" and paper_factor(metric) == 100 else scale
