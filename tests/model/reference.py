"""An independent, deliberately plain re-derivation of the Lavida-O stack for tests.

Written from the release's code (LaVida-O `llava/model/language_model/llada/modeling_llada.py:971-1254`:
LLaDA block math and both branches in one block; `llava/model/llava_arch.py:235-265`: image-token
embedding and head), not from lavida_bench.model.network: it reads raw state-dict
tensors by their release key names, works on one sequence at a time, runs in float64, loops over
rows, and writes RoPE in the explicit two-halves form. Slow on purpose; only for tiny configs.
"""
from __future__ import annotations

import math

import torch
from lavida_bench.model.config import LavidaConfig
from torch import Tensor

StateDict = dict[str, Tensor]
B = "model.transformer.blocks"


def rms(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the last dim (modeling_llada.py:331-359: fp32-or-better statistics)."""
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * weight


def rope(x: Tensor, pos: Tensor, theta: float) -> Tensor:
    """NeoX rotate-half RoPE (modeling_llada.py:393-475): first half i pairs with second half i, angle pos*theta^(-2i/hd).

    x `[H, L, hd]`, pos `[L]`.
    """
    hd = x.shape[-1]
    freqs = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)  # [hd/2]
    ang = pos.to(torch.float64)[:, None] * freqs  # [L, hd/2]
    c, s = torch.cos(ang), torch.sin(ang)
    a, b = x[..., : hd // 2], x[..., hd // 2:]
    return torch.cat([a * c - b * s, b * c + a * s], dim=-1)


def silu_mlp(h: Tensor, gate: Tensor, up: Tensor, down: Tensor) -> Tensor:
    g = gate @ h
    return down @ (g / (1 + torch.exp(-g)) * (up @ h))


def block(sd: StateDict, layer: int, x: Tensor, gen: list[bool], allowed: Tensor, cfg: LavidaConfig) -> Tensor:
    """One block over one sequence `x [L, d]` (gen rows hold a d_gen state, zero-padded).

    `allowed[i, j]` = query i may attend key j (the caller encodes joint/decoupled routing).
    """
    w = {k[len(f"{B}.{layer}."):-len(".weight")]: v.double() for k, v in sd.items()
         if k.startswith(f"{B}.{layer}.")}
    n, d, dg, eps = x.shape[0], cfg.d_model, cfg.d_model_gen, cfg.rms_norm_eps
    heads, hd = cfg.n_heads, d // cfg.n_heads
    q, k, v = (torch.zeros(n, d, dtype=torch.float64) for _ in range(3))
    for i in range(n):
        sfx = "_vision" if gen[i] else ""
        h = rms(x[i, :dg] if gen[i] else x[i], w["attn_norm" + sfx], eps)
        q[i], k[i], v[i] = w["q_proj" + sfx] @ h, w["k_proj" + sfx] @ h, w["v_proj" + sfx] @ h
    pos = torch.arange(n)
    qh = rope(q.view(n, heads, hd).transpose(0, 1), pos, cfg.rope_theta)
    kh = rope(k.view(n, heads, hd).transpose(0, 1), pos, cfg.rope_theta)
    vh = v.view(n, heads, hd).transpose(0, 1)
    scores = qh @ kh.transpose(1, 2) / math.sqrt(hd)
    scores = scores.masked_fill(~allowed, float("-inf"))
    att = torch.softmax(scores, dim=-1) @ vh  # [H, L, hd]
    x = x + att.transpose(0, 1).reshape(n, d) @ w["attn_out"].T  # shared projection for both branches
    out = torch.zeros_like(x)
    for i in range(n):
        if gen[i]:
            xv = x[i, :dg]  # gen rows keep only the first d_gen channels of the update (modeling_llada.py:1084-1254)
            hv = rms(xv, w["ff_norm_vision"], eps)
            out[i, :dg] = xv + silu_mlp(hv, w["ff_proj_vision"], w["up_proj_vision"], w["ff_out_vision"])
        else:
            ht = rms(x[i], w["ff_norm"], eps)
            out[i] = x[i] + silu_mlp(ht, w["ff_proj"], w["up_proj"], w["ff_out"])
    return out


def routing(gen: list[bool], joint: bool) -> Tensor:
    """Joint blocks: everybody sees everybody. Decoupled: each branch sees only itself (modeling_llada.py:1084-1254)."""
    g = torch.tensor(gen)
    if joint:
        return torch.ones(len(gen), len(gen), dtype=torch.bool)
    return g[:, None] == g[None, :]


def stack(sd: StateDict, x: Tensor, gen: list[bool], cfg: LavidaConfig, extra_block: Tensor | None = None) -> Tensor:
    """All blocks + ln_f over one sequence. A block is joint iff layer_id <= dual_tower_layers
    (`modeling_llada.py:1010-1012`). `extra_block[i, j]` = True forbids query i -> key j in every
    block (used to express the prefix-LM semantics of a cached prompt). Returns post-ln_f `[L, d]`;
    gen rows are normalised over all d channels (zero-padded), times ln_f.weight (generate.py:153-156)."""
    x = x.double()
    for layer in range(cfg.n_layers):
        allowed = routing(gen, joint=layer <= cfg.dual_tower_layers)
        if extra_block is not None:
            allowed = allowed & ~extra_block
        x = block(sd, layer, x, gen, allowed, cfg)
    return rms(x, sd["model.transformer.ln_f.weight"].double(), cfg.rms_norm_eps)


def conv_down(x: Tensor, weight: Tensor) -> Tensor:
    """Conv2d k=2 s=2 no bias, written as window sums: x `[h, w, C]` -> `[h/2, w/2, C]`."""
    h, w, _ = x.shape
    out = torch.zeros(h // 2, w // 2, weight.shape[0], dtype=x.dtype)
    for i in range(h // 2):
        for j in range(w // 2):
            for a in range(2):
                for b in range(2):
                    out[i, j] += weight[:, :, a, b] @ x[2 * i + a, 2 * j + b]
    return out


def conv_up(x: Tensor, weight: Tensor) -> Tensor:
    """ConvTranspose2d k=2 s=2 no bias (weight `[in, out, 2, 2]`): x `[h, w, C]` -> `[2h, 2w, C]`."""
    h, w, _ = x.shape
    out = torch.zeros(2 * h, 2 * w, weight.shape[1], dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            for a in range(2):
                for b in range(2):
                    out[2 * i + a, 2 * j + b] = weight[:, :, a, b].T @ x[i, j]
    return out


def embed_codes(sd: StateDict, codes: Tensor, side: int, cfg: LavidaConfig) -> Tensor:
    """Input side (llava_arch.py:235-247) for one image: codes `[side*side]` raster order -> `[side*side/4, d]` zero-padded."""
    g = lambda key: sd["model." + key].double()
    eps = cfg.gen_norm_eps
    h = g("gen_embedding.0.weight")[codes]
    h = rms(h, g("gen_embedding.1.weight"), eps) @ g("gen_embedding.2.weight").T
    grid = rms(h.view(side, side, -1), g("downsample_gen.downsample.norm.weight"), eps)
    h = conv_down(grid, g("downsample_gen.downsample.conv.weight")).reshape(-1, cfg.d_model_gen)
    h = rms(h, g("gen_embedding_2.0.weight"), eps) @ g("gen_embedding_2.1.weight").T
    return torch.cat([h, torch.zeros(h.shape[0], cfg.d_model - cfg.d_model_gen, dtype=h.dtype)], dim=1)


def code_logits(sd: StateDict, hidden: Tensor, side: int, cfg: LavidaConfig) -> Tensor:
    """Output side (llava_arch.py:249-265) for one image: post-ln_f rows `[side*side/4, d]` -> `[side*side, codebook]`."""
    g = lambda key: sd["model." + key].double()
    eps = cfg.gen_norm_eps
    h = hidden.double()[:, : cfg.d_model_gen].reshape(side // 2, side // 2, -1)
    h = rms(h, g("upsample_gen.upsample.norm.weight"), eps)
    h = conv_up(h, g("upsample_gen.upsample.conv.weight")).reshape(side * side, -1)
    h = rms(h, g("gen_predictor_2.0.weight"), eps) @ g("gen_predictor_2.1.weight").T
    h = h @ g("gen_predictor.0.weight").T
    return rms(h, g("gen_predictor.1.weight"), eps) @ g("gen_predictor.2.weight").T
