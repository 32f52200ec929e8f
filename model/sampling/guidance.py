"""Classifier-free guidance formulas for image tokens (text-to-image and three-way editing).

The caller runs the conditional and unconditional rows in one batched forward pass and hands the
logits here; these functions only combine them, exactly as the release does
(LaVida-O `llava/eval/predict_t2i_edit.py:421-611`, editing :443-488). Positions whose conditional logit is
-inf stay -inf, because the release restores them after mixing.
"""
from __future__ import annotations

import enum

import torch


class EditMode(enum.IntEnum):
    """How the release forms the image-only row `uncond_enc` (LaVida-O `predict_t2i_edit.py:327-342`).

    IMAGE_ONLY (0) is the mode every official config uses; 1 and 2 mask the source image and
    average instead of extrapolating; 3 masks only the text rows.
    """

    IMAGE_ONLY = 0
    MASK_SOURCE_VQ = 1
    MASK_SOURCE_VQ_AND_SIGLIP = 2
    MASK_TEXT = 3


def _keep_neg_inf(mixed: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    # release: `logits[logits_is_ninf] = -np.inf` with the mask taken from the cond logits (predict_t2i_edit.py:421-611)
    return torch.where(cond == float("-inf"), cond, mixed)


def cfg(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """(1+g)*cond - g*uncond (predict_t2i_edit.py:421-611), keeping the -inf entries of `cond`. Shapes [B, L, V]."""
    return _keep_neg_inf((1 + scale) * cond - scale * uncond, cond)


def edit_guidance(
    cond: torch.Tensor,
    uncond_enc: torch.Tensor,
    uncond: torch.Tensor,
    scale: float,
    image_scale: float,
    mode: int = 0,
) -> torch.Tensor:
    """Three-way editing guidance (predict_t2i_edit.py:443-488): image guidance first, then text guidance.

    modes 0, 3: c = (1+gi)*cond - gi*uncond_enc; modes 1, 2: c = (cond + gi*uncond_enc)/(1+gi);
    result = (1+g)*c - g*uncond, with the -inf entries of `cond` kept. Official edit configs use
    g = 1.2, gi = 1.4, mode 0 (llava/eval/1024_eval_edit.yaml).
    """
    edit_mode = EditMode(mode)
    if edit_mode in (EditMode.IMAGE_ONLY, EditMode.MASK_TEXT):
        image_guided = (1 + image_scale) * cond - image_scale * uncond_enc
    else:
        image_guided = (cond + image_scale * uncond_enc) / (1 + image_scale)
    return _keep_neg_inf((1 + scale) * image_guided - scale * uncond, cond)


def guide_stacked(
    logits: torch.Tensor,
    scale: float,
    image_scale: float | None = None,
    mode: int = 0,
) -> torch.Tensor:
    """Combine the logits of one batched CFG forward pass.

    The batch is stacked in the release's order (predict_t2i_edit.py:421-611, 443-488): [uncond; cond] for generation
    ([2B, L, V] -> [B, L, V]), or [uncond; uncond_enc; cond] for editing when `image_scale` is
    given ([3B, L, V] -> [B, L, V]).
    """
    n_ways = 2 if image_scale is None else 3
    if logits.shape[0] % n_ways:
        raise ValueError(
            f"guide_stacked: batch of {logits.shape[0]} rows cannot hold {n_ways} stacked guidance branches"
        )
    if image_scale is None:
        uncond, cond = logits.chunk(2)
        return cfg(cond, uncond, scale)
    uncond, uncond_enc, cond = logits.chunk(3)
    return edit_guidance(cond, uncond_enc, uncond, scale, image_scale, mode)
