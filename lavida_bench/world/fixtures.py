"""Benchmark fixtures drawn from the synthetic world, each in its benchmark's official file format.

Meant for the demo's micro model (docs/benchmarks.md, "The synthetic world's micro model"):
every prompt, expression, question and edit is made from a rendered `Scene`, so the correct
answer is known and the world's strict detector can score generated images. The file formats are the ones the task loaders read for the real
benchmarks (see `tasks/generation_fixtures.py` and `tasks/understanding_fixtures.py` for the
sources of each format); only the content is the world's.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from lavida_bench.world.edits import random_edit
from lavida_bench.world.language import GENEVAL_TAGS, article, geneval_caption, questions, refer
from lavida_bench.world.micro import WORLD_SIDE
from lavida_bench.world.scene import Scene, sample_scene

# ImgEdit edit types of the world's operations (PKU-YuanGroup/ImgEdit `Benchmark/Basic/` types)
EDIT_TYPES = {"remove": "remove", "add": "add", "recolor": "adjust", "replace": "replace"}


def describe(scene: Scene) -> str:
    """A DPG-style dense prompt: every object with its colour, and the background."""
    objects = ", ".join(article(f"{o.color} {o.kind}") for o in scene.objects)
    return f"a {scene.background} background with {objects}"


def write_geneval(root: Path, rng: np.random.Generator, n: int) -> Path:
    """`evaluation_metadata.jsonl`: world captions cycling through GenEval's six tags."""
    root.mkdir(parents=True, exist_ok=True)
    metas = [geneval_caption(rng, GENEVAL_TAGS[i % len(GENEVAL_TAGS)], WORLD_SIDE).meta for i in range(n)]
    (root / "evaluation_metadata.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metas), encoding="utf-8")
    return root


def write_dpg(root: Path, rng: np.random.Generator, n: int) -> Path:
    """`prompts/<id>.txt` + `dpg_bench.csv`: per object an entity question and a colour question
    that depends on it (the official dependency graph form)."""
    from lavida_bench.tasks.generation_fixtures import DPG_COLUMNS

    (root / "prompts").mkdir(parents=True, exist_ok=True)
    with open(root / "dpg_bench.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(DPG_COLUMNS)
        for item in range(n):
            scene = sample_scene(rng, WORLD_SIDE)
            text = describe(scene)
            (root / "prompts" / f"{item}.txt").write_text(text + "\n", encoding="utf-8")
            for k, o in enumerate(scene.objects):
                entity, color = 2 * k + 1, 2 * k + 2
                writer.writerow([item, text, "", entity, "0", "entity", "whole", f"entity - whole ({o.kind})",
                                 f"Is there {article(o.kind)}?"])
                writer.writerow([item, text, "", color, str(entity), "attribute", "color",
                                 f"attribute - color ({o.kind}, {o.color})", f"Is there {article(f'{o.color} {o.kind}')}?"])
    return root


def write_fid(root: Path, rng: np.random.Generator, n: int) -> Path:
    """MJHQ-30K layout (`meta_data.json` + `mjhq30k_imgs/<category>/<id>.jpg`) and the COCO-2014
    layout over the same rendered scenes; the prompt describes the reference scene."""
    from lavida_bench.tasks.generation_fixtures import COCO_CAPTIONS, COCO_IMAGES, MJHQ_IMAGES, save_image, write_json

    meta, images, annotations = {}, [], []
    for i in range(n):
        scene = sample_scene(rng, WORLD_SIDE)
        key, category = f"w{i:04d}", ("shapes", "counts")[i % 2]
        meta[key] = {"category": category, "prompt": describe(scene)}
        save_image(scene.image(), root / MJHQ_IMAGES / category / f"{key}.jpg")
        name = f"COCO_val2014_{i + 1:012d}.jpg"
        save_image(scene.image(), root / COCO_IMAGES / name)
        images.append({"id": i + 1, "file_name": name, "width": WORLD_SIDE, "height": WORLD_SIDE})
        annotations.append({"id": 10 * (i + 1), "image_id": i + 1, "caption": describe(scene)})
    write_json(root / "meta_data.json", meta)
    write_json(root / COCO_CAPTIONS, {"images": images, "annotations": annotations})
    return root


def write_imgedit(root: Path, rng: np.random.Generator, n: int) -> Path:
    """Instruction json + source images + `prompts.json` (ImgEdit `Benchmark/Basic/` layout)."""
    from lavida_bench.tasks.generation_fixtures import IMGEDIT_ASPECTS, fixture_rubric, save_image, write_json

    items: dict[str, dict[str, str]] = {}
    for number in range(1, n + 1):
        edit = random_edit(rng, WORLD_SIDE)
        key, rel = str(number), f"shapes/{number:09d}.png"
        save_image(edit.source.image(), root / rel)
        items[key] = {"id": rel, "prompt": edit.instruction, "edit_type": EDIT_TYPES[edit.spec.op]}
    write_json(root / "singleturn.json", items)
    write_json(root / "prompts.json", {t: fixture_rubric(t) for t in IMGEDIT_ASPECTS})
    return root


def refcoco_rows(rng: np.random.Generator, n: int, tag: str) -> list[dict]:
    """lmms-lab/RefCOCO rows: one per referred object, COCO xywh `bbox`, `answer` = [expression]."""
    from lavida_bench.tasks.understanding_fixtures import png_bytes

    rows: list[dict] = []
    while len(rows) < n:
        scene = sample_scene(rng, WORLD_SIDE)
        index = int(rng.integers(len(scene.objects)))
        expression = refer(scene, index)
        if not expression:
            continue
        x0, y0, x1, y1 = scene.objects[index].box
        name = f"COCO_train2014_{tag}{len(rows):06d}.png"
        rows.append({"question_id": f"{tag}{len(rows):06d}", "image": {"bytes": png_bytes(scene.image()), "path": name},
                     "question": "Please carefully observe the area circled in the image and come up with a caption "
                                 "for the area.", "answer": [expression],
                     "segmentation": [x0, y0, x1, y0, x1, y1, x0, y1], "bbox": [x0, y0, x1 - x0, y1 - y0],
                     "iscrowd": 0, "file_name": name})
    return rows


def write_refcoco(root: Path, rng: np.random.Generator, n: int) -> Path:
    """RefCOCO val in the lmms-lab parquet layout (run it with tasks.refcoco.options.splits=[refcoco/val])."""
    from lavida_bench.tasks.understanding_fixtures import refcoco_schema, write_parquet

    write_parquet(root / "RefCOCO" / "data" / "val-00000-of-00001.parquet", refcoco_rows(rng, n, "refcoco_val_"),
                  refcoco_schema())
    return root


MMMU_QUESTION = "<image 1> How many shapes are there?"  # MMMU tags its images in the text
MMMU_CHOICES = ("1", "2", "3", "4")  # option k is the count k (a scene holds 1-4 objects)


def mmmu_answer(scene: Scene) -> str:
    """The letter of the option that counts the scene's objects."""
    from lavida_bench.tasks.mmmu import letters

    return letters(len(MMMU_CHOICES))[MMMU_CHOICES.index(str(len(scene.objects)))]


def write_mmmu(root: Path, rng: np.random.Generator, n: int) -> Path:
    """lmms-lab/MMMU validation parquet: multiple-choice counting items over world scenes."""
    from lavida_bench.tasks.understanding_fixtures import mmmu_row, mmmu_schema, write_parquet

    rows = []
    for i in range(n):
        scene = sample_scene(rng, WORLD_SIDE)
        rows.append(mmmu_row({"id": f"validation_Math_{i + 1}", "question": MMMU_QUESTION,
                              "options": repr(list(MMMU_CHOICES)), "answer": mmmu_answer(scene),
                              "question_type": "multiple-choice", "images": [scene.image()]}))
    write_parquet(root / "data" / "validation-00000-of-00001.parquet", rows, mmmu_schema())
    return root


def write_chartqa(root: Path, rng: np.random.Generator, n: int) -> Path:
    """ChartQA's `test/test_{human,augmented}.json` + `test/png/`, with the world's counting and
    colour questions (numeric answers are scored with ChartQA's relaxed accuracy)."""
    png = root / "test" / "png"
    png.mkdir(parents=True, exist_ok=True)
    for split in ("human", "augmented"):
        records = []
        while len(records) < n:
            scene = sample_scene(rng, WORLD_SIDE)
            qa = [q for q in questions(scene, rng) if q.kind in ("count", "color")]
            pick = qa[int(rng.integers(len(qa)))]
            name = f"{split}_{len(records):03d}.png"
            scene.image().save(png / name)
            records.append({"imgname": name, "query": pick.question, "label": pick.answer})
        (root / "test" / f"test_{split}.json").write_text(json.dumps(records, indent=1))
    return root


WRITERS = {"geneval": write_geneval, "dpg_bench": write_dpg, "fid30k": write_fid, "imgedit": write_imgedit,
           "refcoco": write_refcoco, "mmmu": write_mmmu, "chartqa": write_chartqa}


def write_world_fixtures(root: Path, sizes: dict[str, int], seed: int) -> dict[str, Path]:
    """One fixture folder per task in `sizes` (task -> items), each from its own seeded stream."""
    out = {}
    for k, (task, n) in enumerate(sorted(sizes.items())):
        if task not in WRITERS:
            raise ValueError(f"no world fixture for task {task!r} (one of {', '.join(sorted(WRITERS))})")
        out[task] = WRITERS[task](root / task, np.random.default_rng([seed, k]), n)
    return out
