"""Tiny synthetic datasets of the understanding benchmarks (RefCOCO/+/g, MMMU, ChartQA) in
their official layouts (`make_fixture` of each task): images with drawn shapes at known boxes
(several aspect ratios), MMMU-shaped items whose answers are known from the drawing, and bar
charts rendered with matplotlib from known values. Everything is generated from a seed; nothing
is copied from the real benchmarks. The tasks read them back through `tasks/files.py`, so the
readers and these writers are tested together.
"""
from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

# Canvas sizes (width, height): landscape, portrait, square and very wide, so frame conversions
# that confuse width and height give wrong boxes.
FIXTURE_SIZES: tuple[tuple[int, int], ...] = ((160, 96), (96, 160), (128, 128), (200, 80))
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 70, 220), "yellow": (235, 210, 40),
}
SHAPES = ("rectangle", "oval")


@dataclasses.dataclass(frozen=True)
class DrawnObject:
    """One shape on a synthetic image; `box` is COCO `[x, y, w, h]` in pixels."""

    color: str
    shape: str
    box: tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class Scene:
    width: int
    height: int
    objects: tuple[DrawnObject, ...]

    def render(self) -> Image.Image:
        im = Image.new("RGB", (self.width, self.height), (245, 245, 245))
        draw = ImageDraw.Draw(im)
        for obj in self.objects:
            x, y, w, h = obj.box
            xy = (x, y, x + w - 1, y + h - 1)  # PIL boxes are inclusive; the object covers w x h px
            fill = COLORS[obj.color]
            (draw.rectangle if obj.shape == "rectangle" else draw.ellipse)(xy, fill=fill)
        return im


def make_scene(rng: np.random.Generator, size: tuple[int, int], n_objects: int) -> Scene:
    """Non-overlapping shapes of distinct colors, one per vertical band of the canvas."""
    width, height = size
    band = width // n_objects
    colors = rng.permutation(list(COLORS))[:n_objects]
    objects = []
    for k, color in enumerate(colors):
        w = int(rng.integers(max(8, band // 3), max(9, band - 4)))
        h = int(rng.integers(max(8, height // 4), max(9, height - 8)))
        x = k * band + int(rng.integers(0, max(1, band - w)))
        y = int(rng.integers(0, max(1, height - h)))
        objects.append(DrawnObject(str(color), SHAPES[int(rng.integers(0, 2))], (x, y, w, h)))
    return Scene(width, height, tuple(objects))


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def expressions(obj: DrawnObject, scene: Scene) -> list[str]:
    """Referring expressions that pick out `obj` in `scene` (colors are unique per scene)."""
    position = "left" if obj.box[0] + obj.box[2] / 2 < scene.width / 2 else "right"
    return [f"the {obj.color} {obj.shape}", f"{obj.color} {obj.shape} on the {position}"]


def write_parquet(path: Path, rows: list[dict[str, Any]], schema: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def hf_image_type() -> Any:
    """The parquet type HF `datasets` uses for an `Image()` feature."""
    import pyarrow as pa

    return pa.struct([("bytes", pa.binary()), ("path", pa.string())])


# -- RefCOCO -----------------------------------------------------------------------------------

def refcoco_parquet_rows(rng: np.random.Generator, n_rows: int, tag: str) -> list[dict[str, Any]]:
    """lmms-lab/RefCOCO* rows (HF dataset cards): one row per object, COCO xywh `bbox`,
    `answer` = its expressions. The first row carries two expressions, the rest one."""
    rows = []
    for i in range(n_rows):
        scene = make_scene(rng, FIXTURE_SIZES[i % len(FIXTURE_SIZES)], 2 + i % 2)
        obj = scene.objects[int(rng.integers(0, len(scene.objects)))]
        x, y, w, h = obj.box
        name = f"COCO_train2014_{tag}{i:06d}.png"  # names only; images are inline bytes
        rows.append({
            "question_id": f"{tag}{i:06d}",
            "image": {"bytes": png_bytes(scene.render()), "path": name},
            "question": "Please carefully observe the area circled in the image and come up with "
                        "a caption for the area.",
            "answer": expressions(obj, scene)[: 2 if i == 0 else 1],
            "segmentation": [x, y, x + w, y, x + w, y + h, x, y + h],
            "bbox": [float(v) for v in obj.box],
            "iscrowd": 0,
            "file_name": name,
        })
    return rows


def refcoco_schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("question_id", pa.string()), ("image", hf_image_type()), ("question", pa.string()),
        ("answer", pa.list_(pa.string())), ("segmentation", pa.list_(pa.float64())),
        ("bbox", pa.list_(pa.float64())), ("iscrowd", pa.int64()), ("file_name", pa.string()),
    ])


def write_refcoco_jsonl(folder: Path, split: str, rng: np.random.Generator, n: int) -> None:
    """InternVL-style lines (as LaVida-O `eval/refcoco_eval.py` reads them): `image` path, `sent`, xyxy `bbox`, size."""
    lines = []
    for i in range(n):
        scene = make_scene(rng, FIXTURE_SIZES[(i + 1) % len(FIXTURE_SIZES)], 2)
        obj = scene.objects[i % 2]
        rel = f"images/COCO_train2014_{split}{i:06d}.png"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        scene.render().save(folder / rel)
        x, y, w, h = obj.box
        lines.append({"image": rel, "sent": expressions(obj, scene)[i % 2],
                      "bbox": [x, y, x + w, y + h], "width": scene.width, "height": scene.height})
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def make_refcoco_fixture(root: Path, seed: int = 0) -> Path:
    """All eight paper splits: parquet (lmms-lab layout) for most, the plain JSONL form for
    RefCOCOg test. Three object rows (four expressions) per parquet split, four lines per JSONL."""
    rng = np.random.default_rng(seed)
    layout = {"RefCOCO": ("val", "testA", "testB"), "RefCOCOplus": ("val", "testA", "testB"),
              "RefCOCOg": ("val",)}
    for folder, splits in layout.items():
        for split in splits:
            rows = refcoco_parquet_rows(rng, 3, f"{folder.lower()}_{split}_")
            write_parquet(root / folder / "data" / f"{split}-00000-of-00001.parquet", rows,
                          refcoco_schema())
    write_refcoco_jsonl(root / "RefCOCOg", "test", rng, 4)
    return root


# -- MMMU --------------------------------------------------------------------------------------

def count_question(rng: np.random.Generator, subject: str, n: int, size: tuple[int, int]) -> dict[str, Any]:
    """A multiple-choice item: how many shapes of one color are in `<image 1>`."""
    count = int(rng.integers(1, 4))
    scene = Scene(size[0], size[1], tuple(
        DrawnObject("red", "circle", (4 + 20 * k, 8, 14, 14)) for k in range(count)))
    options = [str(v) for v in range(1, 5)]
    return {"id": f"validation_{subject}_{n}", "question": "<image 1> How many red circles are there?",
            "options": repr(options), "answer": "ABCD"[options.index(str(count))],
            "question_type": "multiple-choice", "images": [scene.render()]}


def mmmu_items(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Six items over three disciplines: MC with one and two images (tag in an option), an open
    numeric and an open string answer."""
    items = [count_question(rng, "Art", 1, (96, 64)), count_question(rng, "Art", 2, (64, 96)),
             count_question(rng, "Physics", 1, (128, 64))]
    a = make_scene(rng, (96, 96), 2)
    b = make_scene(rng, (128, 80), 3)
    items.append({"id": "validation_Physics_2",
                  "question": "Which image shows more shapes?",
                  "options": repr(["<image 1>", "<image 2>", "Both the same", "Neither"]),
                  "answer": "B", "question_type": "multiple-choice",
                  "images": [a.render(), b.render()]})
    c = make_scene(rng, (160, 96), 3)
    items.append({"id": "validation_Math_1", "question": "<image 1> How many shapes are drawn?",
                  "options": "[]", "answer": "3", "question_type": "open", "images": [c.render()]})
    d = make_scene(rng, (96, 160), 1)
    items.append({"id": "validation_Math_2",
                  "question": "What color is the shape in <image 1>?",
                  "options": "[]", "answer": d.objects[0].color, "question_type": "open",
                  "images": [d.render()]})
    return items


def mmmu_row(item: dict[str, Any]) -> dict[str, Any]:
    """lmms-lab/MMMU row (HF dataset card): `options` is a Python-literal string, seven
    image columns, unused ones null."""
    row = {k: item[k] for k in ("id", "question", "options", "answer", "question_type")}
    row.update({"explanation": "", "img_type": "['Diagrams']", "topic_difficulty": "Easy",
                "subfield": "Synthetic"})
    for k in range(1, 8):
        ims = item["images"]
        row[f"image_{k}"] = ({"bytes": png_bytes(ims[k - 1]), "path": f"{item['id']}_{k}.png"}
                             if k <= len(ims) else None)
    return row


def mmmu_schema() -> Any:
    import pyarrow as pa

    text = ["id", "question", "options", "explanation"]
    tail = ["img_type", "answer", "topic_difficulty", "question_type", "subfield"]
    return pa.schema([(c, pa.string()) for c in text]
                     + [(f"image_{k}", hf_image_type()) for k in range(1, 8)]
                     + [(c, pa.string()) for c in tail])


def make_mmmu_fixture(root: Path, seed: int = 0) -> Path:
    """`data/validation-00000-of-00001.parquet` as in the lmms-lab/MMMU snapshot layout."""
    rows = [mmmu_row(item) for item in mmmu_items(np.random.default_rng(seed))]
    write_parquet(root / "data" / "validation-00000-of-00001.parquet", rows, mmmu_schema())
    return root


# -- ChartQA -----------------------------------------------------------------------------------

def render_bar_chart(labels: list[str], values: list[int], title: str) -> Image.Image:
    """A small labelled bar chart (matplotlib, Agg canvas, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.0, 1.5), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bars = ax.bar(labels, values, color="#4a78c8")
    ax.bar_label(bars, fontsize=6)
    ax.set_title(title, fontsize=7)
    ax.tick_params(labelsize=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def chartqa_records(rng: np.random.Generator, split: str, n: int, png: Path) -> list[dict[str, str]]:
    """Official `{imgname, query, label}` records; answers follow from the drawn values."""
    records = []
    for i in range(n):
        labels = ["A", "B", "C", "D"][: 3 + i % 2]
        values = [int(v) for v in rng.choice(np.arange(5, 95), size=len(labels), replace=False)]
        name = f"{split}_{i:03d}.png"
        render_bar_chart(labels, values, f"Synthetic {split} {i}").save(png / name)
        target = labels[i % len(labels)]
        if i % 2 == 0:
            query, label = f"What is the value of {target}?", str(values[i % len(labels)])
        else:
            query, label = "Which category has the highest value?", labels[int(np.argmax(values))]
        records.append({"imgname": name, "query": query, "label": label})
    return records


def make_chartqa_fixture(root: Path, seed: int = 0) -> Path:
    """`test/test_human.json`, `test/test_augmented.json` and `test/png/` (vis-nlp/ChartQA
    layout, `ChartQA Dataset/test/`); four records per split."""
    rng = np.random.default_rng(seed)
    png = root / "test" / "png"
    png.mkdir(parents=True, exist_ok=True)
    for split in ("human", "augmented"):
        records = chartqa_records(rng, split, 4, png)
        (root / "test" / f"test_{split}.json").write_text(json.dumps(records, indent=1))
    return root
