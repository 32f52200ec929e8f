"""How each benchmark is laid out in the paper, and how a run's metrics map onto it.

One `Layout` per task: row order and labels (the paper's column order for that benchmark),
variant column labels, the headline metric, the factor that converts a stored metric into the
units the paper prints, digits, and whether lower is better (FID). Metrics a run has that the
layout does not list are still shown, after the listed ones, so nothing is silently dropped.
"""
from __future__ import annotations

import fnmatch
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
    headline: str  # metric used for leaderboards, gains and plots
    rows: tuple[str, ...] = ()  # preferred row order (metric names)
    labels: dict[str, str] = field(default_factory=dict)
    scale: float = 1.0  # stored metric x scale = the paper's units, for metrics matching `scaled`
    scaled: tuple[str, ...] = ("*",)  # fnmatch patterns of the metrics `scale` applies to
    digits: int = 2
    lower_is_better: bool = False
    unit: str = ""

    def scale_for(self, metric: str) -> float:
        """Factor to the paper's units for this metric (rates and timings stay as stored)."""
        return self.scale if any(fnmatch.fnmatchcase(metric, p) for p in self.scaled) else 1.0

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


# GenEval: six task scores + macro overall (benchmarks.md §1.3), printed as 0-1 fractions.
GENEVAL_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
# DPG-Bench: L1 categories + overall, stored x100 already by tasks/dpg_bench.py (benchmarks.md §2.3).
DPG_L1 = ("entity", "attribute", "relation", "global", "other")
# ImgEdit: leaderboard column order; Hybrid = compose (benchmarks.md §4.1).
IMGEDIT_TYPES = ("add", "adjust", "extract", "replace", "remove", "background", "style", "compose", "action")
# RefCOCO/+/g splits as tasks/refcoco.py names them (benchmarks.md §5.1), Precision@0.5 in
# percent (§5.5).
REFCOCO_SPLITS = tuple(f"{d}/{s}" for d, splits in (("refcoco", ("val", "testA", "testB")),
                                                     ("refcoco+", ("val", "testA", "testB")),
                                                     ("refcocog", ("val", "test"))) for s in splits)
# MMMU disciplines (benchmarks.md §6.1); overall = instance-weighted accuracy in percent (§6.3).
MMMU_DISCIPLINES = ("Art and Design", "Business", "Science", "Health and Medicine",
                    "Humanities and Social Science", "Tech and Engineering")

LAYOUTS: dict[str, Layout] = {
    "geneval": Layout(
        "geneval", "GenEval", "overall", GENEVAL_TAGS + ("overall",),
        {"single_object": "Single Obj.", "two_object": "Two Obj.", "counting": "Counting",
         "colors": "Colors", "position": "Position", "color_attr": "Color Attri.", "overall": "Overall"},
        scale=1.0, digits=2),
    "dpg_bench": Layout(
        "dpg_bench", "DPG-Bench", "overall", tuple(f"L1/{c}" for c in DPG_L1) + ("overall",),
        {f"L1/{c}": c.capitalize() for c in DPG_L1} | {"overall": "Overall"},
        scale=1.0, digits=1),
    "fid30k": Layout("fid30k", "FID-30k (MJHQ-30K)", "fid", ("fid",), {"fid": "FID"},
                     scale=1.0, digits=2, lower_is_better=True),
    "imgedit": Layout(
        "imgedit", "ImgEdit", "overall", IMGEDIT_TYPES + ("overall", "overall_items"),
        {t: t.capitalize() for t in IMGEDIT_TYPES} | {"compose": "Hybrid", "overall": "Overall",
                                                      "overall_items": "Overall (item-weighted)"},
        scale=1.0, digits=2),
    "refcoco": Layout(
        "refcoco", "RefCOCO / RefCOCO+ / RefCOCOg (Precision@0.5)", "acc",
        tuple(f"acc/{s}" for s in REFCOCO_SPLITS) + ("acc",),
        {f"acc/{s}": s.replace("refcocog", "RefCOCOg").replace("refcoco", "RefCOCO").replace("/", " ")
         for s in REFCOCO_SPLITS} | {"acc": "all splits"},
        scale=100.0, scaled=("acc", "acc/*"), digits=1, unit="%"),
    "mmmu": Layout(
        "mmmu", "MMMU (val)", "acc", ("acc",) + tuple(f"acc/{d}" for d in MMMU_DISCIPLINES),
        {"acc": "Overall"} | {f"acc/{d}": d for d in MMMU_DISCIPLINES},
        scale=100.0, scaled=("acc", "acc/*"), digits=1, unit="%"),
    "chartqa": Layout(
        "chartqa", "ChartQA (test, relaxed accuracy)", "acc", ("acc/human", "acc/augmented", "acc"),
        {"acc": "Overall", "acc/human": "Human", "acc/augmented": "Augmented"},
        scale=100.0, scaled=("acc", "acc/*"), digits=1, unit="%"),
}


def layout_for(task: str) -> Layout:
    """The task's layout, or a plain one for tasks the paper does not print."""
    return LAYOUTS.get(task) or Layout(task, task, "overall")


def order_tasks(tasks: list[str]) -> list[str]:
    """Benchmarks in the paper's order, others after in their given order."""
    return [t for t in LAYOUTS if t in tasks] + [t for t in tasks if t not in LAYOUTS]


def variant_label(variant: str) -> str:
    return VARIANT_LABELS.get(variant, variant)


def order_variants(variants: list[str]) -> list[str]:
    known = [v for v in VARIANT_ORDER if v in variants]
    return known + [v for v in variants if v not in VARIANT_ORDER]


def headline_metric(task: str, available: list[str]) -> str | None:
    """The layout's headline if the run has it, else the first metric in layout order."""
    lay = layout_for(task)
    if lay.headline in available:
        return lay.headline
    ordered = lay.order(available)
    return ordered[0] if ordered else None
