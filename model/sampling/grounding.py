"""Grounding: boxes as quantised LOC tokens, decoded in one (or a few) parallel steps.

A box is written `<LOC_BEGIN><LOC_x1><LOC_y1><LOC_x2><LOC_y2><LOC_END>` with integers 0..1024
(LaVida-O `llava/eval/predict_grounding.py:100-105, 127`). The official RefCOCO eval fills all four
masked slots with one forward pass and an argmax over the full vocabulary (`predict_grounding.py:57-101`,
`steps=1` at :307), which is Lavida-O's speed claim for grounding.

The coordinate frame is not settled by the release (its training boxes come from pre-computed data
that is not public; the paper, arXiv 2509.19244, only says coordinates are normalised to [0, 1] and
quantised to 1,025 values): the demo's
`demo_utils.transform_bbox` pads the image centred to a square of side max(W, H) and scales that
square to 1024 ("pad_square", the best-supported reading and the default); the alternative is
per-axis scaling x*1024/W, y*1024/H ("per_axis"). Both are offered so a run can check which one
reproduces the paper's ~92 P@0.5.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from lavida_bench.model.sampling.text import LogitsFn, SamplerTrace, check_logits, take_top
from lavida_bench.model.tokens import LOC_PATTERN, N_LOC

N_BINS = N_LOC  # LOC_0 .. LOC_1024 (LaVida-O `llava/train/train.py:1048-1053`)
MAX_BIN = N_BINS - 1
FRAMES = ("pad_square", "per_axis")


def _frame(width: float, height: float, frame: str) -> tuple[float, float, float, float]:
    """(scale_x, scale_y, pad_left, pad_top) mapping image pixels to the 0..1024 grid.

    pad_square follows LaVida-O `llava/eval/demo_utils.py` `transform_bbox`: integer centring pads
    (max-W)//2, (max-H)//2 and one scale 1024/max(W, H).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"box frame: image size must be positive, got {width}x{height}")
    if frame == "pad_square":
        side = max(width, height)
        scale = MAX_BIN / side
        return scale, scale, float((side - width) // 2), float((side - height) // 2)
    if frame == "per_axis":
        return MAX_BIN / width, MAX_BIN / height, 0.0, 0.0
    raise ValueError(f"box frame: unknown frame {frame!r}; expected one of {FRAMES}")


def quantize_box(box_xyxy: Sequence[float], width: float, height: float, frame: str = "pad_square") -> list[int]:
    """Pixel box [x1, y1, x2, y2] -> four LOC bins (rounded, clamped to 0..1024)."""
    if len(box_xyxy) != 4:
        raise ValueError(f"quantize_box: expected [x1, y1, x2, y2], got {list(box_xyxy)}")
    sx, sy, pad_x, pad_y = _frame(width, height, frame)
    x1, y1, x2, y2 = box_xyxy
    grid = [(x1 + pad_x) * sx, (y1 + pad_y) * sy, (x2 + pad_x) * sx, (y2 + pad_y) * sy]
    return [min(MAX_BIN, max(0, math.floor(v + 0.5))) for v in grid]


def dequantize_box(bins: Sequence[int], width: float, height: float, frame: str = "pad_square") -> list[float]:
    """Four LOC bins -> pixel box [x1, y1, x2, y2] in the original image (inverse of quantize_box)."""
    if len(bins) != 4:
        raise ValueError(f"dequantize_box: expected four LOC values, got {list(bins)}")
    sx, sy, pad_x, pad_y = _frame(width, height, frame)
    b1, b2, b3, b4 = bins
    return [b1 / sx - pad_x, b2 / sy - pad_y, b3 / sx - pad_x, b4 / sy - pad_y]


def parse_loc_text(text: str) -> list[int]:
    """All LOC integers in decoded text, in order (regex `<LOC_([0-9]+)>`, predict_grounding.py:127).

    Deciding what a reply with fewer than four values means (a miss) is the scorer's job.
    """
    return [int(value) for value in LOC_PATTERN.findall(text)]


def decode_positions(
    logits_fn: LogitsFn,
    slots: torch.Tensor,
    *,
    steps: int = 1,
    mask_id: int,
    final: str = "last_pass",
) -> tuple[torch.Tensor, SamplerTrace]:
    """Fill the masked `slots [B, n]` (4 per box) with exactly `steps` logits_fn calls.

    logits_fn(x LongTensor[B, n]) -> FloatTensor[B, n, V]; argmax is over the full vocabulary
    (predict_grounding.py:57-101), so a non-LOC token can come out and the scorer must treat it as a malformed box.
    steps=1 is the official RefCOCO setting: one call, argmax everywhere.
    steps>1 (predict_grounding.py:80-95, the multi-step branch): each call argmaxes every slot and
    commits the still-masked slots with the highest raw logit into x for the next call. The
    release hard-codes 2 commits per step (only steps=2 behaves for one box); this generalises it
    to ceil(remaining / steps_left) per step, which is exactly the release at steps=2 for four
    slots. `final` picks the output: "last_pass" (the release: the last call's argmax at every
    slot, committed ones included) or "committed" (each slot keeps the token committed for it).
    Every row starts fully masked, so the per-step counts are known without reading tensors.
    """
    batch, n_positions = slots.shape
    if steps < 1 or steps > max(n_positions, 1):
        raise ValueError(f"decode_positions: steps must be in 1..{n_positions}, got {steps}")
    if final not in ("last_pass", "committed"):
        raise ValueError(f"decode_positions: final must be 'last_pass' or 'committed', got {final!r}")
    x = torch.full_like(slots, mask_id, dtype=torch.long)
    trace = SamplerTrace()
    prediction, remaining = x, n_positions
    for step in range(steps):
        logits = logits_fn(x)
        check_logits(logits, batch, n_positions, "decode_positions")
        trace.nfe += 1
        trace.steps += 1
        top_logit, prediction = logits.max(-1)  # [B, n] each
        prediction = prediction.to(x.device)
        k = math.ceil(remaining / (steps - step))
        rank = torch.where(x == mask_id, top_logit.to(x.device, torch.float64), float("-inf"))
        x = torch.where(take_top(rank, torch.full((batch,), k, device=x.device)), prediction, x)
        remaining -= k
    return (prediction if final == "last_pass" else x), trace
