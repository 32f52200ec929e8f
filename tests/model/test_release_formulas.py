"""Formulas where float32 rounding depends on how the release writes them (issue 14, "Model")."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageOps

from lavida_bench.model.network import rope_tables
from lavida_bench.model.vq import VQTokenizer, tiny_vq_config, vq_from_config


def test_rope_inverse_frequencies_as_the_release_writes_them():
    # modeling_llada.py:423: inv_freq = 1.0 / (rope_theta ** (arange(0, dim, 2) / dim)), float32
    head_dim, theta = 128, 500000.0
    positions = torch.arange(8192)[None]
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = positions.float()[..., None] * inv_freq
    emb = torch.cat([angles, angles], dim=-1)[:, None]
    cos, sin = rope_tables(positions, head_dim, theta)
    assert torch.equal(cos, emb.cos())
    assert torch.equal(sin, emb.sin())


def test_vq_input_is_padded_to_a_square_then_resized():
    # mm_utils.py:28-31 pad_to_square_and_resize: ImageOps.pad to the longer side (black), then
    # Image.resize to the generation size (PIL's default bicubic filter)
    vq = VQTokenizer(vq_from_config(tiny_vq_config()))
    gen = np.random.default_rng(0)
    image = Image.fromarray(gen.integers(0, 256, (37, 90, 3), dtype=np.uint8))
    padded = ImageOps.pad(image, (90, 90), color=(0, 0, 0))
    want = np.asarray(padded.resize((64, 64)), dtype=np.float32) / 255.0
    got = vq.to_tensor([image], 64)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(got, want)
