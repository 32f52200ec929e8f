"""The golden run: every benchmark with hand-countable per-sample scores.

Expected values (paper units; see test_tables.py):
- geneval: plain single_object 16/20 = 0.80, position 3/10 = 0.30, overall (macro) 0.55;
  plan 18/20 = 0.90, 7/10 = 0.70, overall 0.80; plan_reflect 20/20 = 1.00, 8/10 = 0.80, overall 0.90.
- dpg_bench plain: item scores 1, .5, .75, .25 -> overall 62.5; entity 75.0, attribute 50.0.
- fid30k plain: 12.5 [11.0, 14.0] n=4 (fixed; FID does not decompose into samples).
- imgedit plan: add 4, 3 -> 3.50; remove 5, 4 -> 4.50; overall (macro) 4.00.
- refcoco steps1: val 9/10 = 90.0, refcocog test 4/5 = 80.0, all 13/15 = 86.7;
  steps4: 10/10, 5/5 -> 100.0 each.
- mmmu plain: Science 1/2, Business 2/2 -> 75.0 overall; chartqa plain: human 1/2, augmented 2/2 -> 75.0.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.reports.builder import solid, write_run

PLAIN_TRACE = {"nfe": 64, "steps": 64, "latency_s": 1.0, "stages": [{"name": "draw", "nfe": 64, "seconds": 1.0}],
               "plan": None, "plan_boxes": [], "rounds": []}
PLAN_TRACE = {"nfe": 80, "steps": 64, "latency_s": 1.5, "plan": "<LOC_1>", "plan_boxes": [[4, 4, 30, 30]],
              "stages": [{"name": "plan", "nfe": 16, "seconds": 0.5}, {"name": "draw", "nfe": 64, "seconds": 1.0}],
              "rounds": []}
REFLECT_TRACE = {"nfe": 154, "steps": 64, "latency_s": 3.0, "plan": "<LOC_1>", "plan_boxes": [[4, 4, 30, 30]],
                 "stages": [{"name": "plan", "nfe": 16, "seconds": 0.5}, {"name": "draw", "nfe": 64, "seconds": 1.0},
                            {"name": "judge", "nfe": 5, "seconds": 0.25}, {"name": "draw", "nfe": 64, "seconds": 1.0},
                            {"name": "judge", "nfe": 5, "seconds": 0.25}],
                 "rounds": [{"verdict": "incorrect", "feedback": "the cat is missing"},
                            {"verdict": "correct", "feedback": "looks right"}]}
SPEED_ROWS = [{"capability": "ground", "model": "lavida_o", "setting": "1 step", "median_s": 0.0123,
               "iqr_s": 0.001, "nfe": 1, "speedup": 6.8, "device": "cpu"}]


def geneval_rows(variant: str, single: int, position: int, trace: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for i in range(30):
        tag, k = ("single_object", i) if i < 20 else ("position", i - 20)
        correct = float(k < (single if tag == "single_object" else position))
        rel = f"images/geneval/{variant}/g{i:02d}.png"
        output = {"text": None, "boxes": None, "image": rel, "attempts": []}
        images = {rel: solid((200, 40 + 5 * i, 90))} if i < 3 else {}
        if trace.get("rounds"):
            att = f"images/geneval/{variant}/g{i:02d}-attempt0.png"
            output["attempts"] = [att]
            if i < 3:
                images[att] = solid((40, 40, 200))
        rows.append({"id": f"g{i:02d}", "scores": {"tag": tag, "correct": correct, "prompt_index": i},
                     "trace": trace, "output": output, "images": images, "prompt": f"a photo {i}"})
    return rows


def split_rows(prefix: str, field: str, groups: list[tuple[str, int, int]], extra: dict[str, Any] | None = None,
               trace: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """groups: (group name, samples, correct)."""
    rows, i = [], 0
    for group, n, correct in groups:
        for k in range(n):
            rows.append({"id": f"{prefix}{i:02d}", "scores": {field: group, "correct": float(k < correct),
                                                              **(extra or {})},
                         "trace": trace or {"nfe": 1, "latency_s": 0.05}})
            i += 1
    return rows


def golden_samples() -> dict[str, dict[str, list[dict[str, Any]]]]:
    dpg = [{"id": f"d{i}", "scores": {"item": f"d{i}", "score": s, "category": c}}
           for i, (s, c) in enumerate([(1.0, "entity"), (0.5, "entity"), (0.75, "attribute"), (0.25, "attribute")])]
    fid = [{"id": f"f{i}", "scores": {"features": "AAAA" * 10}} for i in range(4)]
    imgedit = [{"id": f"e{i}", "scores": {"edit_type": t, "score": s, "status": "ok"}}
               for i, (t, s) in enumerate([("add", 4.0), ("add", 3.0), ("remove", 5.0), ("remove", 4.0)])]
    ref_groups1 = [("refcoco/val", 10, 9), ("refcocog/test", 5, 4)]
    ref_groups4 = [("refcoco/val", 10, 10), ("refcocog/test", 5, 5)]
    return {
        "geneval": {"plain": geneval_rows("plain", 16, 3, PLAIN_TRACE),
                    "plan": geneval_rows("plan", 18, 7, PLAN_TRACE),
                    "plan_reflect": geneval_rows("plan_reflect", 20, 8, REFLECT_TRACE)},
        "dpg_bench": {"plain": dpg},
        "fid30k": {"plain": fid},
        "imgedit": {"plan": imgedit},
        "refcoco": {"steps1": split_rows("r", "split", ref_groups1, {"parse_failure": 0}, {"nfe": 1, "latency_s": 0.02}),
                    "steps4": split_rows("r", "split", ref_groups4, {"parse_failure": 0}, {"nfe": 4, "latency_s": 0.08})},
        "mmmu": {"plain": split_rows("m", "discipline", [("Science", 2, 1), ("Business", 2, 2)])},
        "chartqa": {"plain": split_rows("c", "split", [("human", 2, 1), ("augmented", 2, 2)])},
    }


def standin_manifest(manifest: dict[str, Any]) -> None:
    manifest["backends"]["detector"] = {"name": "standin", "standin": True, "official": False, "official_choice": "mmdet"}


def write_golden(root: Path, standin: bool = False) -> Path:
    return write_run(root, golden_samples(), speed_rows=SPEED_ROWS,
                     manifest_edit=standin_manifest if standin else None)
