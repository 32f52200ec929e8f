"""Synthetic fixtures of the four generation benchmarks (GenEval, DPG-Bench, FID-30k, ImgEdit):
a "shapes" world (coloured circles, squares and triangles at known places, drawn by
`lavida_bench.backends.shapes`) rendered into each benchmark's official file format, so the
stand-in evaluators score real images whose truth is known.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image

FIXTURE_SIDE = 256  # pixels; fixture images are small so tests and the demo stay fast
GRID = 3  # scenes place shapes in the cells of a 3x3 grid, so positions are unambiguous


@dataclass(frozen=True)
class Placed:
    """A shape in a grid cell (column, row), independent of the image size."""

    kind: str
    color: str
    cell: tuple[int, int]


def render(placed: Iterable[Placed], side: int = FIXTURE_SIDE) -> Image.Image:
    """Draw shapes centred in their grid cells, each 60% of a cell wide."""
    from lavida_bench.backends.shapes import Shape, draw_shapes

    cell = side / GRID
    half = 0.3 * cell
    shapes = []
    for p in placed:
        cx, cy = (p.cell[0] + 0.5) * cell, (p.cell[1] + 0.5) * cell
        shapes.append(Shape(p.kind, p.color, (cx - half, cy - half, cx + half, cy + half)))
    return draw_shapes((side, side), shapes)


def random_scene(rng: np.random.Generator, max_shapes: int = 3) -> list[Placed]:
    """1..max_shapes shapes of random kind and colour in distinct cells."""
    from lavida_bench.backends.shapes import COLORS, SHAPES

    colors = sorted(c for c in COLORS if c != "white")  # white is invisible on the white canvas
    n = int(rng.integers(1, max_shapes + 1))
    cells = rng.choice(GRID * GRID, size=n, replace=False)
    return [Placed(SHAPES[int(rng.integers(len(SHAPES)))], colors[int(rng.integers(len(colors)))],
                   (int(c) % GRID, int(c) // GRID)) for c in cells]


def save_image(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


# GenEval: one prompt per tag over the shape vocabulary, with a scene that satisfies it.
# Clause structure follows GenEval's evaluation_metadata.jsonl (djghosh13/geneval `prompts/`).
GENEVAL_SCENES: tuple[tuple[dict[str, Any], tuple[Placed, ...]], ...] = (
    ({"tag": "single_object", "include": [{"class": "circle", "count": 1}],
      "prompt": "a photo of a circle"},
     (Placed("circle", "red", (1, 1)),)),
    ({"tag": "two_object", "include": [{"class": "circle", "count": 1}, {"class": "square", "count": 1}],
      "prompt": "a photo of a circle and a square"},
     (Placed("circle", "blue", (0, 0)), Placed("square", "green", (2, 2)))),
    ({"tag": "counting", "include": [{"class": "square", "count": 2}],
      "exclude": [{"class": "square", "count": 3}], "prompt": "a photo of two squares"},
     (Placed("square", "orange", (0, 1)), Placed("square", "orange", (2, 1)))),
    ({"tag": "colors", "include": [{"class": "triangle", "count": 1, "color": "blue"}],
      "prompt": "a photo of a blue triangle"},
     (Placed("triangle", "blue", (1, 1)),)),
    ({"tag": "position", "include": [{"class": "square", "count": 1},
                                     {"class": "circle", "count": 1, "position": ["left of", 0]}],
      "prompt": "a photo of a circle left of a square"},
     (Placed("circle", "purple", (0, 1)), Placed("square", "yellow", (2, 1)))),
    ({"tag": "color_attr", "include": [{"class": "circle", "count": 1, "color": "red"},
                                       {"class": "square", "count": 1, "color": "green"}],
      "prompt": "a photo of a red circle and a green square"},
     (Placed("circle", "red", (0, 0)), Placed("square", "green", (2, 2)))),
)


def write_geneval_fixture(root: Path) -> Path:
    """`evaluation_metadata.jsonl`, one line per tag (format of djghosh13/geneval `prompts/evaluation_metadata.jsonl`)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(meta) + "\n" for meta, _ in GENEVAL_SCENES)
    (root / "evaluation_metadata.jsonl").write_text(lines, encoding="utf-8")
    return root


# DPG-Bench: items with a question graph in the official CSV columns (TencentQQGYLab/ELLA `dpg_bench/dpg_bench.csv`).
DPG_COLUMNS = ("item_id", "text", "keywords", "proposition_id", "dependency", "category_broad",
               "category_detailed", "tuple", "question_natural_language")


@dataclass(frozen=True)
class DpgQuestion:
    pid: int
    dependency: str  # comma-separated parent ids, "0" = none
    tuple: str  # "<L1> - <L2> (args)"
    question: str


def _dpg_item(color: str, kind: str) -> tuple[DpgQuestion, ...]:
    return (DpgQuestion(1, "0", f"entity - whole ({kind})", f"Is there a {kind}?"),
            DpgQuestion(2, "1", f"attribute - color ({kind}, {color})", f"Is there a {color} {kind}?"))


DPG_SCENES: tuple[tuple[str, str, tuple[DpgQuestion, ...], tuple[Placed, ...]], ...] = (
    ("0", "A red circle in the middle of a white canvas.", _dpg_item("red", "circle"),
     (Placed("circle", "red", (1, 1)),)),
    ("1", "A blue square next to a green triangle.",
     _dpg_item("blue", "square") + (
         DpgQuestion(3, "0", "entity - whole (triangle)", "Is there a triangle?"),
         DpgQuestion(4, "3", "attribute - color (triangle, green)", "Is there a green triangle?")),
     (Placed("square", "blue", (0, 1)), Placed("triangle", "green", (2, 1)))),
    ("2", "A yellow triangle alone.", _dpg_item("yellow", "triangle"),
     (Placed("triangle", "yellow", (1, 1)),)),
)


def write_dpg_fixture(root: Path) -> Path:
    """`prompts/<item_id>.txt` and `dpg_bench.csv` with the official header."""
    (root / "prompts").mkdir(parents=True, exist_ok=True)
    with open(root / "dpg_bench.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(DPG_COLUMNS)
        for item_id, text, questions, _ in DPG_SCENES:
            (root / "prompts" / f"{item_id}.txt").write_text(text + "\n", encoding="utf-8")
            for q in questions:
                l1, l2 = (part.strip() for part in q.tuple.split("(")[0].split("-", 1))
                writer.writerow([item_id, text, "", q.pid, q.dependency, l1, l2, q.tuple, q.question])
    return root


# FID-30k: MJHQ-30K's meta_data.json + per-category image folders, and COCO captions + images
# (playgroundai/MJHQ-30K dataset card; COCO 2014 val). Prompts describe the reference scene drawn for them.
FID_CATEGORIES = ("animals", "food")
FID_PER_CATEGORY = 3
MJHQ_IMAGES = "mjhq30k_imgs"
COCO_CAPTIONS = "annotations/captions_val2014.json"
COCO_IMAGES = "val2014"


def describe_scene(scene: Sequence[Placed]) -> str:
    return "a white canvas with " + " and ".join(f"a {p.color} {p.kind}" for p in scene)


def write_fid_fixture(root: Path, seed: int) -> Path:
    """Both reference sets over the same random scenes: MJHQ layout and COCO-2014 layout."""
    rng = np.random.default_rng(seed)
    meta, images, annotations = {}, [], []
    for c, category in enumerate(FID_CATEGORIES):
        for i in range(FID_PER_CATEGORY):
            scene = random_scene(rng)
            key = f"{seed:02d}{c}{i:03d}f"
            meta[key] = {"category": category, "prompt": describe_scene(scene)}
            image = render(scene)
            save_image(image, root / MJHQ_IMAGES / category / f"{key}.jpg")
            image_id = 1000 * c + i + 1
            file_name = f"COCO_val2014_{image_id:012d}.jpg"
            save_image(image, root / COCO_IMAGES / file_name)
            images.append({"id": image_id, "file_name": file_name, "width": FIXTURE_SIDE,
                           "height": FIXTURE_SIDE})
            annotations.append({"id": 10 * image_id, "image_id": image_id, "caption": describe_scene(scene)})
    write_json(root / "meta_data.json", meta)
    write_json(root / COCO_CAPTIONS, {"images": images, "annotations": annotations})
    return root


# ImgEdit: instruction json keyed by number, source images by category folder, and a rubric
# file in the shape of the official prompts.json (PKU-YuanGroup/ImgEdit `Benchmark/Basic/`). The rubric texts
# here are the fixture's own, NOT the official ones: users supply the official prompts.json.
IMGEDIT_ASPECTS = {  # the three aspect names per edit_type, as in ImgEdit `Benchmark/Basic/prompts.json`
    "add": ("Prompt Compliance", "Visual Naturalness", "Physical & Detail Coherence"),
    "remove": ("Prompt Compliance", "Visual Naturalness", "Physical & Detail Integrity"),
    "replace": ("Prompt Compliance", "Visual Naturalness", "Physical & Detail Integrity"),
    "adjust": ("Prompt Compliance", "Visual Seamlessness", "Physical & Detail Fidelity"),
    "style": ("Style Fidelity", "Content Preservation", "Rendering Quality"),
    "action": ("Action Fidelity", "Identity Preservation", "Visual & Anatomical Coherence"),
    "extract": ("Object Identity", "Mask Precision", "Visual Quality"),
    "background": ("Instruction Compliance", "Visual Seamlessness", "Physical Consistency"),
    "compose": ("Instruction Compliance", "Visual Naturalness", "Physical Consistency & Fine Detail"),
}
IMGEDIT_ITEMS = (  # (key, category folder, edit_type, instruction, scene)
    ("1", "shapes", "remove", "Remove the red circle.",
     (Placed("circle", "red", (0, 1)), Placed("square", "blue", (2, 1)))),
    ("2", "shapes", "add", "Add a green triangle to the right of the square.",
     (Placed("square", "yellow", (0, 1)),)),
    ("3", "shapes", "replace", "Replace the square with a circle.",
     (Placed("square", "purple", (1, 1)),)),
    ("4", "shapes", "adjust", "Change the triangle's color to blue.",
     (Placed("triangle", "orange", (1, 0)),)),
)


def fixture_rubric(edit_type: str) -> str:
    """A rubric in the official reply format (three `Name: <1-5>` lines) for the fixture."""
    aspects = IMGEDIT_ASPECTS[edit_type]
    lines = "\n".join(f"{a}: <1-5>" for a in aspects)
    return (f"[lavida-bench fixture rubric for '{edit_type}', not the official ImgEdit prompt] "
            f"Compare the original (first) and the edited (second) image for the instruction: "
            f"<edit_prompt>\nRate {', '.join(aspects)} from 1 to 5. Reply exactly as:\n"
            f"Brief reasoning: <at most 20 words>\n{lines}")


def write_imgedit_fixture(root: Path, instructions_name: str = "singleturn.json") -> Path:
    """Instruction json, source images beside it (`<category>/<file>`), and `prompts.json`."""
    items = {}
    for key, folder, edit_type, prompt, scene in IMGEDIT_ITEMS:
        rel = f"{folder}/{int(key):09d}.jpg"
        save_image(render(scene), root / rel)
        items[key] = {"id": rel, "prompt": prompt, "edit_type": edit_type}
    write_json(root / instructions_name, items)
    write_json(root / "prompts.json", {t: fixture_rubric(t) for t in IMGEDIT_ASPECTS})
    return root
