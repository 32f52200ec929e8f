"""Sample gallery of one run: what the model actually produced, drawn so a person can judge it.

- generation: the final image with the planned layout boxes drawn over it, and for reflection
  every attempt with the model's own verdict;
- editing: the model's input (source) image before, the edited image after (+ plan boxes);
- grounding: the input image with the predicted box (red) and the ground truth (green);
- understanding: the input image with the question and the model's answer.

Outputs come from the run's records and image files. Inputs (source images, prompts, ground
truth) are not stored in the run, so they are rebuilt the way the run built them: the task named
in the manifest is constructed on its recorded data folder and options, and its own `request()`
gives the prompt and input images of the sample. Where that data is no longer there, the gallery
says so on the item instead of failing the report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from lavida_bench.api import DataError, Sample, Variant
from lavida_bench.reports.layout import order_tasks, order_variants
from lavida_bench.reports.load import Run

THUMB = 256
PRED, TRUTH, PLAN = (220, 30, 30), (20, 170, 60), (30, 100, 230)


@dataclass
class Panel:
    title: str
    image: Image.Image | None
    note: str = ""


@dataclass
class GalleryItem:
    task: str
    variant: str
    sample_id: str
    capability: str
    prompt: str = ""
    panels: list[Panel] = field(default_factory=list)
    caption: str = ""  # scores and other facts about the sample


class TaskInputs:
    """Rebuilds a task from the run's manifest to recover each sample's prompt, input images
    and ground truth (see the module docstring)."""

    def __init__(self, run: Run, task: str):
        self.task_name = task
        self.problem = ""
        self._task: Any = None
        self._samples: dict[str, Sample] = {}
        cfg = run.manifest.get("config", {}).get("tasks", {}).get(task, {})
        try:
            from lavida_bench.tasks import TASKS

            self._task = TASKS.get(task)(cfg.get("data"), cfg.get("options") or {})
            self._samples = {s.id: s for s in self._task.load()}
        except (DataError, OSError, ValueError, KeyError, TypeError) as err:
            self.problem = f"inputs unavailable ({type(err).__name__}: {err})"

    def sample(self, sample_id: str) -> Sample | None:
        return self._samples.get(sample_id)

    def request(self, sample_id: str, variant: str) -> tuple[str, list[Image.Image], str]:
        """(prompt, input images, problem) of one sample."""
        sample = self.sample(sample_id)
        if sample is None:
            return "", [], self.problem or f"sample {sample_id} not in the task's data"
        try:
            req = self._task.request(sample, Variant(variant))
        except (DataError, OSError, ValueError, KeyError) as err:
            return "", [], f"input unavailable ({type(err).__name__}: {err})"
        return req.prompt, list(req.images), ""


def open_run_image(run: Run, relpath: Any) -> tuple[Image.Image | None, str]:
    if not isinstance(relpath, str) or not relpath:
        return None, "no image"
    path = run.root / relpath
    try:
        with Image.open(path) as im:
            return im.convert("RGB"), ""
    except (OSError, ValueError) as err:
        return None, f"cannot read {relpath}: {err}"


def thumbnail(image: Image.Image) -> tuple[Image.Image, float]:
    """A copy at most THUMB pixels on its longer side, and the scale applied (boxes follow)."""
    scale = min(1.0, THUMB / max(image.size))
    if scale >= 1.0:
        return image.copy(), 1.0
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC), scale


def valid_box(box: Any) -> bool:
    return (isinstance(box, (list, tuple)) and len(box) == 4
            and all(isinstance(v, (int, float)) for v in box))


def draw_boxes(image: Image.Image, groups: list[tuple[list[Any], tuple[int, int, int]]]) -> Image.Image:
    """Thumbnail of `image` with each (boxes in the image's pixels, colour) group drawn."""
    thumb, scale = thumbnail(image)
    draw = ImageDraw.Draw(thumb)
    for boxes, colour in groups:
        for box in boxes or []:
            if valid_box(box):
                x1, y1, x2, y2 = (float(v) * scale for v in box)
                draw.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], outline=colour, width=2)
    return thumb


def caption_of(score: dict[str, Any] | None) -> str:
    """Short numeric/text facts of a score record (long payloads left out)."""
    if not score:
        return "not scored"
    if score.get("status") != "ok":
        return f"scoring error: {score.get('error', '?')}"
    parts = []
    for k, v in (score.get("scores") or {}).items():
        if isinstance(v, (bool, int, float)):
            parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
        elif isinstance(v, str) and len(v) <= 60:
            parts.append(f"{k}={v}")
    return ", ".join(parts)


def generation_panels(run: Run, rec: dict[str, Any], inputs: list[Image.Image]) -> list[Panel]:
    out, trace = rec.get("output") or {}, rec.get("trace") or {}
    panels = []
    if inputs:
        panels.append(Panel("before (model input)", draw_boxes(inputs[0], [])))
    final, problem = open_run_image(run, out.get("image"))
    rounds = trace.get("rounds") or []
    attempts = out.get("attempts") or []
    for k, rnd in enumerate(rounds[:-1] if final is not None else rounds):
        rel = rnd.get("image") if isinstance(rnd.get("image"), str) else (attempts[k] if k < len(attempts) else None)
        img, prob = open_run_image(run, rel)
        panels.append(Panel(f"round {k + 1}: {rnd.get('verdict', '?')}",
                            draw_boxes(img, []) if img else None, str(rnd.get("feedback") or prob)[:200]))
    title = "after" if inputs else "generated"
    if rounds and final is not None:
        title += f" (round {len(rounds)}: {rounds[-1].get('verdict', '?')})"
    plan_note = "planned boxes in blue" if trace.get("plan_boxes") else ""
    panels.append(Panel(title, draw_boxes(final, [(trace.get("plan_boxes") or [], PLAN)]) if final else None,
                        plan_note or problem))
    return panels


def grounding_panels(rec: dict[str, Any], inputs: list[Image.Image], truth: Any) -> list[Panel]:
    boxes = (rec.get("output") or {}).get("boxes") or []
    if not inputs:
        return [Panel("prediction", None, f"predicted boxes {boxes}")]
    truth_boxes = [truth] if valid_box(truth) else []
    return [Panel("prediction (red) vs ground truth (green)",
                  draw_boxes(inputs[0], [(truth_boxes, TRUTH), (boxes, PRED)]),
                  f"pred {fmt_boxes(boxes)}; truth {fmt_boxes(truth_boxes)}")]


def fmt_boxes(boxes: list[Any]) -> str:
    return "; ".join("[" + ", ".join(f"{v:.0f}" for v in b) + "]" for b in boxes if valid_box(b)) or "none"


def understanding_panels(rec: dict[str, Any], inputs: list[Image.Image]) -> list[Panel]:
    text = str((rec.get("output") or {}).get("text") or "")
    if not inputs:
        return [Panel("answer", None, text[:300])]
    return [Panel("input", draw_boxes(inputs[0], []), f"answer: {text[:300]}")]


def pick_ids(records: dict[str, dict[str, Any]], per_variant: int) -> list[str]:
    """Deterministic choice: ok samples by id, those with several reflection rounds first."""
    ok = sorted(i for i, r in records.items() if r.get("status") == "ok")
    multi = [i for i in ok if len((records[i].get("trace") or {}).get("rounds") or []) > 1]
    return (multi + [i for i in ok if i not in multi])[:per_variant]


def task_capability(run: Run, task: str) -> str:
    for t in run.manifest.get("tasks", []):
        if isinstance(t, dict) and t.get("name") == task:
            return str(t.get("capability", ""))
    return ""


def build_gallery(run: Run, per_variant: int = 2) -> tuple[list[GalleryItem], list[str]]:
    """Gallery items of every task/variant and notes on anything that could not be shown."""
    items: list[GalleryItem] = []
    notes: list[str] = []
    for task in order_tasks(run.tasks()):
        capability = task_capability(run, task)
        inputs = TaskInputs(run, task)
        if inputs.problem:
            notes.append(f"{task}: {inputs.problem}")
        for variant in order_variants(run.variants(task)):
            records, scores = run.outputs(task, variant), run.scores(task, variant)
            for sid in pick_ids(records, per_variant):
                prompt, images, problem = inputs.request(sid, variant)
                rec = records[sid]
                if capability in ("generate", "edit"):
                    panels = generation_panels(run, rec, images)
                elif capability == "ground":
                    sample = inputs.sample(sid)
                    panels = grounding_panels(rec, images, sample.data.get("bbox") if sample else None)
                else:
                    panels = understanding_panels(rec, images)
                caption = caption_of(scores.get(sid))
                if problem and not inputs.problem:
                    caption += f" ({problem})"
                items.append(GalleryItem(task, variant, sid, capability, prompt, panels, caption))
    return items, notes
