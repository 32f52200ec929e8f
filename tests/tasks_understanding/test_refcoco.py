import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from pycocotools import mask as mask_utils

from lavida_bench.api import DataError, Options, Sample, Variant
from lavida_bench.tasks.refcoco import RefCOCO, box_iou, first_box, xywh_to_xyxy
from lavida_bench.tasks.understanding_fixtures import COLORS


def sample(bbox, group="refcoco/val"):
    return Sample("s", {"group": group, "bbox": bbox})


# -- IoU and box conversions ----------------------------------------------------------------------

def test_iou_exactly_half_is_a_hit_and_just_below_is_a_miss(ctx):
    task = RefCOCO(None)
    gt = sample([0.0, 0.0, 10.0, 10.0])
    # half the ground truth: intersection 50, union 100 -> IoU 0.5
    hit = task.score(gt, {"boxes": [[0, 0, 10, 5]]}, ctx)
    assert hit["iou"] == 0.5 and hit["correct"] == 1.0 and hit["parse_failure"] == 0
    # intersection 49, union 100 -> 0.49
    miss = task.score(gt, {"boxes": [[0, 0, 10, 4.9]]}, ctx)
    assert miss["iou"] == pytest.approx(0.49) and miss["correct"] == 0.0


def test_iou_of_shifted_box():
    # [0,0,4,4] vs [2,0,6,4]: intersection 2x4=8, union 16+16-8=24
    assert box_iou([0, 0, 4, 4], [2, 0, 6, 4]) == pytest.approx(8 / 24)
    assert box_iou([0, 0, 4, 4], [5, 5, 6, 6]) == 0.0
    assert box_iou([4, 4, 0, 0], [0, 0, 4, 4]) == 0.0  # reversed corners have no area


def test_xywh_to_xyxy_on_non_square_image():
    # a 200x80 image, object 40 wide and 50 tall at (150, 20): right edge 190, bottom 70
    assert xywh_to_xyxy([150, 20, 40, 50]) == [150.0, 20.0, 190.0, 70.0]
    # swapping w and h (the classic bug) gives a box that overlaps only partly
    assert box_iou(xywh_to_xyxy([150, 20, 40, 50]), xywh_to_xyxy([150, 20, 50, 40])) == pytest.approx(1600 / 2400)


def test_iou_matches_pycocotools():
    rng = np.random.default_rng(3)
    for _ in range(200):
        a = np.concatenate([rng.uniform(0, 100, 2), rng.uniform(1, 60, 2)])  # xywh
        b = np.concatenate([rng.uniform(0, 100, 2), rng.uniform(1, 60, 2)])
        ref = mask_utils.iou([a.tolist()], [b.tolist()], [0])[0][0]
        assert box_iou(xywh_to_xyxy(a), xywh_to_xyxy(b)) == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("boxes", [None, [], [[1, 2, 3]], [["a", 0, 1, 1]], [[0, 0, float("nan"), 1]],
                                   "0 0 1 1", [[True, 0, 1, 1]], [None]])
def test_malformed_boxes_score_zero_and_count_as_parse_failure(boxes, ctx):
    assert first_box(boxes) is None
    out = RefCOCO(None).score(sample([0, 0, 10, 10]), {"boxes": boxes}, ctx)
    assert out["correct"] == 0.0 and out["iou"] == 0.0 and out["parse_failure"] == 1


def test_score_records_latency_and_steps_from_trace(ctx):
    out = RefCOCO(None).score(sample([0, 0, 10, 10]),
                              {"boxes": [[0, 0, 10, 10]], "trace": {"latency_s": 0.25, "steps": 4}}, ctx)
    assert out == {"split": "refcoco/val", "latency_s": 0.25, "steps": 4.0, "iou": 1.0, "correct": 1.0,
                   "parse_failure": 0}


def test_aggregate_per_split():
    scores = [{"split": "refcoco/val", "correct": c, "iou": 0.0, "parse_failure": 0, "latency_s": 1.0}
              for c in (1.0, 0.0)]
    scores += [{"split": "refcocog/test", "correct": 1.0, "iou": 0.0, "parse_failure": 1, "latency_s": 3.0}]
    m = RefCOCO(None).aggregate(scores)
    assert m["acc/refcoco/val"].value == 0.5 and m["acc/refcoco/val"].n == 2
    assert m["acc/refcocog/test"].value == 1.0
    assert m["acc"].value == pytest.approx(2 / 3) and m["parse_failure_rate"].value == pytest.approx(1 / 3)
    assert m["latency_s"].value == pytest.approx(5 / 3)
    assert m["acc"].ci_low <= m["acc"].value <= m["acc"].ci_high


# -- fixture and loading --------------------------------------------------------------------------

def test_fixture_loads_every_paper_split(refcoco_dir):
    samples = RefCOCO(refcoco_dir).load()
    counts = {}
    for s in samples:
        counts[s.data["group"]] = counts.get(s.data["group"], 0) + 1
    # parquet splits: 3 object rows, the first with 2 expressions; JSONL: 4 lines
    assert counts == {"refcoco/val": 4, "refcoco/testA": 4, "refcoco/testB": 4, "refcoco+/val": 4,
                      "refcoco+/testA": 4, "refcoco+/testB": 4, "refcocog/val": 4, "refcocog/test": 4}
    assert len({s.id for s in samples}) == 32


def test_fixture_rows_are_lmms_lab_shaped(refcoco_dir):
    table = pq.read_table(refcoco_dir / "RefCOCO" / "data" / "val-00000-of-00001.parquet")
    assert table.column_names == ["question_id", "image", "question", "answer", "segmentation", "bbox",
                                  "iscrowd", "file_name"]
    row = table.to_pylist()[0]
    assert len(row["answer"]) == 2 and set(row["image"]) == {"bytes", "path"} and len(row["bbox"]) == 4


def test_fixture_boxes_cover_the_drawn_object(refcoco_dir):
    """The stored box (xyxy after conversion) must sit exactly on the drawn shape in the image the
    model receives, for parquet (xywh) and JSONL (xyxy) records and every aspect ratio."""
    task = RefCOCO(refcoco_dir, {"splits": ["refcoco/val", "refcoco/testA", "refcocog/test"]})
    sizes = set()
    for s in task.load():
        request = task.request(s, Variant("steps1", Options(steps=1)))
        im = np.asarray(request.images[0])
        sizes.add(request.images[0].size)
        x1, y1, x2, y2 = (int(v) for v in s.data["bbox"])
        color = s.data["expression"].split()[-2 if s.data["expression"].startswith("the") else 0]
        inside = im[y1:y2, x1:x2].reshape(-1, 3)
        share = np.mean(np.all(inside == COLORS[color], axis=1))
        assert share > 0.7, (s.id, share)  # rectangles fill the box, ovals ~79% of it
        # one pixel outside each edge is never the object's color
        for yy, xx in ((y1 - 1, (x1 + x2) // 2), (y2, (x1 + x2) // 2), ((y1 + y2) // 2, x1 - 1), ((y1 + y2) // 2, x2)):
            if 0 <= yy < im.shape[0] and 0 <= xx < im.shape[1]:
                assert tuple(im[yy, xx]) != COLORS[color]
    assert len({w == h for w, h in sizes}) == 2 and any(w > h for w, h in sizes) and any(w < h for w, h in sizes)


def test_request_passes_steps_and_bare_expression(refcoco_dir):
    task = RefCOCO(refcoco_dir, {"splits": ["refcoco/val"]})
    s = task.load()[0]
    assert task.request(s, Variant("steps4", Options(steps=4))).options.steps == 4
    req = task.request(s, Variant("plain"))
    assert req.options.steps == 1 and req.prompt == s.data["expression"] and req.capability == "ground"


def test_unknown_option_and_split_are_named():
    with pytest.raises(DataError, match=r"tasks\.refcoco\.options\.split: unknown key \(valid: splits, image_root\)"):
        RefCOCO(None, {"split": "val"})
    with pytest.raises(DataError, match="refcoco/tset"):
        RefCOCO(None, {"splits": ["refcoco/tset"]})


def test_named_missing_split_is_an_error(tmp_path):
    (tmp_path / "RefCOCO").mkdir()
    with pytest.raises(DataError, match=r"refcoco/val.*val-\*\.parquet"):
        RefCOCO(tmp_path, {"splits": ["refcoco/val"]}).load()
    with pytest.raises(DataError, match="split\\(s\\) refcoco/val, refcoco/testA, .* not found"):
        RefCOCO(tmp_path).load()


def test_missing_paper_split_is_named_unless_splits_are_selected(tmp_path, refcoco_dir):
    """A paper split deleted from the data fails the run (it would silently change the table);
    selecting the splits explicitly runs the ones present."""
    import shutil

    shutil.copytree(refcoco_dir, tmp_path / "d")
    (tmp_path / "d" / "RefCOCO" / "data" / "testA-00000-of-00001.parquet").unlink()
    with pytest.raises(DataError, match=r"split\(s\) refcoco/testA not found.*options\.splits=\[refcoco/val,refcoco/testB,"):
        RefCOCO(tmp_path / "d").load()
    chosen = RefCOCO(tmp_path / "d", {"splits": ["refcoco/val", "refcoco/testB"]}).load()
    assert {s.data["group"] for s in chosen} == {"refcoco/val", "refcoco/testB"}


def write_jsonl(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


@pytest.mark.parametrize("line, message", [
    ({"image": "a.png", "bbox": [0, 0, 5, 5]}, r"test\.jsonl: line 2: missing field 'sent'"),
    ({"image": "a.png", "sent": "x", "bbox": [0, 0, 5]}, r"line 2, field 'bbox'"),
    ({"image": "a.png", "sent": "x", "bbox": [5, 0, 1, 5]}, r"line 2, field 'bbox'.*x2 > x1"),
    ({"image": 3, "sent": "x", "bbox": [0, 0, 5, 5]}, r"line 2, field 'image'"),
])
def test_jsonl_errors_name_file_line_and_field(tmp_path, line, message):
    good = {"image": "a.png", "sent": "the cat", "bbox": [0, 0, 5, 5]}
    write_jsonl(tmp_path / "RefCOCOg" / "test.jsonl", [good, line])
    with pytest.raises(DataError, match=message):
        RefCOCO(tmp_path, {"splits": ["refcocog/test"]}).load()


def test_parquet_errors_name_file_row_and_field(tmp_path, refcoco_dir):
    table = pq.read_table(refcoco_dir / "RefCOCO" / "data" / "val-00000-of-00001.parquet")
    rows = table.to_pylist()
    rows[1]["bbox"] = [1.0, 2.0, 0.0, 4.0]  # zero width
    target = tmp_path / "RefCOCO" / "data" / "val-00000-of-00001.parquet"
    target.parent.mkdir(parents=True)
    pq.write_table(table.from_pylist(rows, schema=table.schema), target)
    with pytest.raises(DataError, match=r"val-00000-of-00001\.parquet: row 1 .*field 'bbox'"):
        RefCOCO(tmp_path, {"splits": ["refcoco/val"]}).load()
    pq.write_table(table.drop(["answer"]), target)
    with pytest.raises(DataError, match=r"missing field\(s\) 'answer'"):
        RefCOCO(tmp_path, {"splits": ["refcoco/val"]}).load()
    pq.write_table(table.drop(["image"]), target)  # checked at load, though read one cell at a time later
    with pytest.raises(DataError, match=r"val-00000-of-00001\.parquet: missing field\(s\) 'image'"):
        RefCOCO(tmp_path, {"splits": ["refcoco/val"]}).load()
    target.write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"val-00000-of-00001\.parquet: not a readable parquet file"):
        RefCOCO(tmp_path, {"splits": ["refcoco/val"]}).load()


def test_both_forms_of_one_split_are_ambiguous(tmp_path, refcoco_dir):
    import shutil

    shutil.copytree(refcoco_dir / "RefCOCOg", tmp_path / "RefCOCOg")
    shutil.copy(tmp_path / "RefCOCOg" / "test.jsonl", tmp_path / "RefCOCOg" / "val.jsonl")
    with pytest.raises(DataError, match="keep one form"):
        RefCOCO(tmp_path, {"splits": ["refcocog/val"]}).load()
