"""The speed cases: which capability, which requests, which unit of output.

One case per capability setting the issue names: an understanding answer, grounding with 1 and
with 4 steps (LaVida-O `llava/eval/predict_grounding.py:57-101`), text-to-image and editing at each
resolution with the official step count (`llava/eval/1024_eval.yaml`), and planning + reflection with
each stage timed separately (`llava/eval/predict_t2i_edit.py:706-808`). Inputs are synthetic (seeded noise images, fixed prompts): latency does
not depend on content, only on sizes, which are recorded.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from lavida_bench.api import Capability, Options, Request
from lavida_bench.config import SpeedConfig

QUESTION = "Describe this image in detail. What objects are there and where are they?"
EXPRESSION = "the person on the left holding a red umbrella"
CAPTION = "a photo of a red bicycle leaning against a blue wall next to a potted plant"
INSTRUCTION = "replace the bicycle with a motorcycle"
CASES = ("understand", "ground1", "ground4", "generate", "edit", "plan_reflect")
PER_RESOLUTION = ("generate", "edit", "plan_reflect")


@dataclass(frozen=True)
class Case:
    name: str  # e.g. "ground1", "generate@1024"
    kind: str  # entry of CASES
    capability: Capability
    units: str  # tokens | boxes | images
    resolution: int | None = None


def noise_image(size: tuple[int, int], seed: int) -> Image.Image:
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=gen, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def expand_cases(cfg: SpeedConfig) -> list[Case]:
    unknown = [c for c in cfg.cases if c not in CASES]
    if unknown:
        raise ValueError(f"speed.cases: unknown case(s) {unknown} (available: {', '.join(CASES)})")
    out = []
    for kind in cfg.cases:
        if kind in PER_RESOLUTION:
            capability: Capability = "edit" if kind == "edit" else "generate"
            out += [Case(f"{kind}@{res}", kind, capability, "images", res) for res in cfg.resolutions]
        elif kind == "understand":
            out.append(Case(kind, kind, "understand", "tokens"))
        else:
            out.append(Case(kind, kind, "ground", "boxes"))
    return out


def units_per_sample(case: Case, cfg: SpeedConfig) -> float:
    return float(cfg.understand_tokens) if case.units == "tokens" else 1.0


def requests_for(case: Case, batch: int, cfg: SpeedConfig) -> list[Request]:
    """`batch` distinct requests (own seed and input image each) for one case."""
    size = (int(cfg.input_size[0]), int(cfg.input_size[1]))
    out = []
    for i in range(batch):
        image = noise_image(size, seed=1000 + i)
        if case.kind == "understand":
            req = Request(f"u{i}", "understand", QUESTION, [image], Options(max_new_tokens=cfg.understand_tokens),
                          seed=i)
        elif case.kind in ("ground1", "ground4"):
            req = Request(f"g{i}", "ground", EXPRESSION, [image], Options(steps=int(case.kind[-1])), seed=i)
        elif case.kind == "edit":
            req = Request(f"e{i}", "edit", INSTRUCTION, [image],
                          Options(steps=cfg.image_steps, resolution=case.resolution), seed=i)
        else:
            plan = case.kind == "plan_reflect"
            req = Request(f"t{i}", "generate", CAPTION, [],
                          Options(steps=cfg.image_steps, resolution=case.resolution, plan=plan,
                                  reflect_rounds=2 if plan else 1), seed=i)
        out.append(req)
    return out
