"""The Lavida-O network: LLaDA understanding branch + Elastic-MoT generation branch in one stack.

Module and parameter names reproduce the release's state_dict keys (lavida-o-model.md §1.3), so
the released safetensors load with `strict=True`. The block math follows §2-3:

- every position lives in one residual stream `[B, L, d_model]`; positions flagged in `gen_mask`
  (generated-image and source-VQ tokens) hold a `d_model_gen`-wide state zero-padded to d_model
  and use the `*_vision` sub-layers, everything else uses the understanding sub-layers;
- blocks `0..dual_tower_layers` attend jointly over the whole sequence; later blocks attend
  within each branch only (text also sees the prefix cache, image tokens never do);
- both branches share `attn_out`; gen rows keep only the first d_model_gen channels of its update;
- the shared `ln_f` normalises the zero-padded gen rows over all d_model channels (§3.2).

Attention is bidirectional everywhere (no causal mask, even with a cache, §2). Batching rows of
different lengths is exact: padded keys are masked and each row carries its own positions, so a
row's result does not depend on what else is in the batch (the release only ever ran batch 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lavida_bench.model.config import LavidaConfig

AttnImpl = Literal["sdpa", "eager"]


class RMSNorm(nn.Module):
    """RMSNorm with fp32 statistics, cast back to the input dtype before the weight (§2)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        y = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)
        return y * self.weight.to(x.dtype)


def rope_tables(positions: Tensor, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos/sin tables `[B, 1, L, head_dim]` in fp32, NeoX rotate-half layout (§2)."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim)
    angles = positions.float()[..., None] * inv_freq
    emb = torch.cat([angles, angles], dim=-1)[:, None]
    return emb.cos(), emb.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    xf = x.float()
    half = xf.shape[-1] // 2
    rotated = torch.cat([-xf[..., half:], xf[..., :half]], dim=-1)
    return (xf * cos + rotated * sin).to(x.dtype)


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, impl: AttnImpl) -> Tensor:
    """Bidirectional softmax attention; `mask` (bool, True = may attend) broadcasts to [B,H,Lq,Lk]."""
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    # A padded query with no key it may see gets zeros (as SDPA does), not NaN that would spread.
    return (scores.softmax(-1).nan_to_num(0.0) @ v.float()).to(q.dtype)


@dataclass
class LayerCache:
    """Keys (already rotated) and values of a prefix, one entry per block."""

    keys: Tensor  # [B, H, Lc, hd]
    values: Tensor


@dataclass
class PrefixCache:
    layers: list[LayerCache]
    valid: Tensor  # [B, Lc] bool: which cached positions are real (not padding)
    next_position: Tensor  # [B] position id of the first token after the prefix
    gen: Tensor  # [B, Lc] bool: which cached positions were routed to the generation branch

    @property
    def length(self) -> int:
        return self.valid.shape[1]


@dataclass
class Masks:
    """Attention masks of one forward pass, shared by all blocks."""

    joint: Tensor | None
    split: Tensor | None


class Block(nn.Module):
    """One LLaDA-Llama block carrying both branches (keys `blocks.N.*`, §1.3)."""

    def __init__(self, cfg: LavidaConfig, layer_id: int):
        super().__init__()
        d, dg = cfg.d_model, cfg.d_model_gen
        self.layer_id, self.n_heads, self.head_dim, self.d_gen = layer_id, cfg.n_heads, cfg.head_dim, dg
        self.joint = layer_id < cfg.joint_layers
        self.attn_norm = RMSNorm(d, cfg.rms_norm_eps)
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_norm = RMSNorm(d, cfg.rms_norm_eps)
        self.ff_proj = nn.Linear(d, cfg.mlp_hidden_size, bias=False)
        self.up_proj = nn.Linear(d, cfg.mlp_hidden_size, bias=False)
        self.ff_out = nn.Linear(cfg.mlp_hidden_size, d, bias=False)
        self.attn_norm_vision = RMSNorm(dg, cfg.rms_norm_eps)
        self.q_proj_vision, self.k_proj_vision, self.v_proj_vision = (
            nn.Linear(dg, d, bias=False) for _ in range(3))
        self.ff_norm_vision = RMSNorm(dg, cfg.rms_norm_eps)
        self.ff_proj_vision = nn.Linear(dg, cfg.mlp_hidden_size_gen, bias=False)
        self.up_proj_vision = nn.Linear(dg, cfg.mlp_hidden_size_gen, bias=False)
        self.ff_out_vision = nn.Linear(cfg.mlp_hidden_size_gen, dg, bias=False)

    def _qkv(self, x: Tensor, gen: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        if gen is None:
            h = self.attn_norm(x)
            return self.q_proj(h), self.k_proj(h), self.v_proj(h)
        text, xt, xv = ~gen, x[~gen], x[gen][:, : self.d_gen]
        ht, hv = self.attn_norm(xt), self.attn_norm_vision(xv)
        out = []
        for und, vis in ((self.q_proj, self.q_proj_vision), (self.k_proj, self.k_proj_vision),
                         (self.v_proj, self.v_proj_vision)):
            t = x.new_empty(x.shape[0], x.shape[1], und.out_features)
            t[text], t[gen] = und(ht), vis(hv)
            out.append(t)
        return out[0], out[1], out[2]

    def _mlp(self, x: Tensor, gen: Tensor | None) -> Tensor:
        if gen is None:
            h = self.ff_norm(x)
            return x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))
        xt, xv = x[~gen], x[gen][:, : self.d_gen]  # gen rows keep the first d_gen channels (§3.2)
        ht, hv = self.ff_norm(xt), self.ff_norm_vision(xv)
        out = torch.zeros_like(x)
        out[~gen] = xt + self.ff_out(F.silu(self.ff_proj(ht)) * self.up_proj(ht))
        out[gen] = F.pad(xv + self.ff_out_vision(F.silu(self.ff_proj_vision(hv)) * self.up_proj_vision(hv)),
                         (0, x.shape[-1] - self.d_gen))
        return out

    def forward(self, x: Tensor, gen: Tensor | None, rope: tuple[Tensor, Tensor], masks: Masks,
                cache: LayerCache | None, impl: AttnImpl) -> tuple[Tensor, LayerCache]:
        b, n, _ = x.shape
        q, k, v = (t.view(b, n, self.n_heads, self.head_dim).transpose(1, 2) for t in self._qkv(x, gen))
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        current = LayerCache(k, v)
        if cache is not None:
            k, v = torch.cat([cache.keys, k], dim=2), torch.cat([cache.values, v], dim=2)
        a = attention(q, k, v, masks.joint if self.joint else masks.split, impl)
        x = x + self.attn_out(a.transpose(1, 2).reshape(b, n, -1))  # shared projection (§3.2)
        return self._mlp(x, gen), current


class Transformer(nn.Module):
    """`model.transformer.*`: embeddings, blocks, final norm and the untied text head."""

    def __init__(self, cfg: LavidaConfig):
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.ln_f = RMSNorm(cfg.d_model, cfg.rms_norm_eps)
        self.ff_out = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)


class ConvResample(nn.Module):
    """diffusers-style Down/Upsample2D with an RMSNorm over channels (keys `.norm`, `.conv`, §3.3)."""

    def __init__(self, dim: int, eps: float, up: bool):
        super().__init__()
        self.norm = RMSNorm(dim, eps)
        conv = nn.ConvTranspose2d if up else nn.Conv2d
        self.conv = conv(dim, dim, kernel_size=2, stride=2, bias=False)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        """`[N, h*w, C]` row-major -> `[N, h'*w', C]` row-major at the new resolution."""
        grid = self.norm(x).view(x.shape[0], h, w, -1).permute(0, 3, 1, 2)
        return self.conv(grid).flatten(2).transpose(1, 2)


def gen_mlp(*layers: nn.Module) -> nn.Sequential:
    return nn.Sequential(*layers)


class VisionTowerWrapper(nn.Module):
    """Holds the SigLIP encoder under the release's attribute path `vision_tower.vision_tower`."""

    def __init__(self, cfg: LavidaConfig):
        super().__init__()
        from transformers import SiglipVisionConfig, SiglipVisionModel

        v = cfg.vision
        config = SiglipVisionConfig(hidden_size=v.hidden_size, intermediate_size=v.intermediate_size,
                                    num_hidden_layers=v.num_layers, num_attention_heads=v.num_heads,
                                    patch_size=v.patch_size, image_size=v.image_size,
                                    layer_norm_eps=v.layer_norm_eps, hidden_act="gelu_pytorch_tanh",
                                    vision_use_head=False)
        config._attn_implementation = "sdpa"
        # transformers 5 flattened SiglipVisionModel's keys; the release's have a `vision_model.` level.
        self.vision_tower = nn.ModuleDict({"vision_model": SiglipVisionModel(config)})

    def forward(self, pixels: Tensor) -> Tensor:
        # Output of the last kept layer, before post_layernorm ("layer -2" of so400m, §4.1).
        out = self.vision_tower["vision_model"](pixel_values=pixels, output_hidden_states=True)
        return out.hidden_states[-1]


class Resampler(nn.Module):
    def __init__(self, cfg: LavidaConfig):
        super().__init__()
        self.pool = nn.Conv2d(cfg.mm_hidden_size, cfg.mm_hidden_size, cfg.pool_stride, cfg.pool_stride)

    def forward(self, feats: Tensor) -> Tensor:
        side = int(math.isqrt(feats.shape[1]))
        grid = feats.transpose(1, 2).reshape(feats.shape[0], -1, side, side)
        return self.pool(grid).flatten(2).transpose(1, 2)  # odd last row/column dropped (§4.1)


class LavidaCore(nn.Module):
    """Everything under the release's `model.` prefix except the VQ model."""

    def __init__(self, cfg: LavidaConfig):
        super().__init__()
        dg, eps = cfg.d_model_gen, cfg.gen_norm_eps
        self.transformer = Transformer(cfg)
        self.vision_tower = VisionTowerWrapper(cfg)
        self.vision_resampler = Resampler(cfg)
        self.mm_projector = nn.Sequential(nn.Linear(cfg.mm_hidden_size, cfg.d_model), nn.GELU(),
                                          nn.Linear(cfg.d_model, cfg.d_model))
        self.image_newline = nn.Parameter(torch.zeros(cfg.d_model))
        self.gen_embedding = gen_mlp(nn.Embedding(cfg.gen_vocab_rows, dg), RMSNorm(dg, eps),
                                     nn.Linear(dg, dg, bias=False))
        self.gen_embedding_2 = gen_mlp(RMSNorm(dg, eps), nn.Linear(dg, dg, bias=False))
        self.gen_predictor = gen_mlp(nn.Linear(dg, dg, bias=False), RMSNorm(dg, eps),
                                     nn.Linear(dg, cfg.codebook_size, bias=False))
        self.gen_predictor_2 = gen_mlp(RMSNorm(dg, eps), nn.Linear(dg, dg, bias=False))
        if cfg.downsample:
            self.downsample_gen = nn.ModuleDict({"downsample": ConvResample(dg, eps, up=False)})
            self.upsample_gen = nn.ModuleDict({"upsample": ConvResample(dg, eps, up=True)})


class LavidaNetwork(nn.Module):
    """The whole network; `state_dict()` keys equal the release's (all start with `model.`)."""

    def __init__(self, cfg: LavidaConfig, attn_implementation: AttnImpl = "sdpa"):
        super().__init__()
        self.config = cfg
        self.attn_implementation: AttnImpl = attn_implementation
        self.model = LavidaCore(cfg)

    # --- embeddings ------------------------------------------------------------------------
    def embed_text(self, ids: Tensor) -> Tensor:
        return self.model.transformer.wte(ids)

    def image_grid(self, codes_side: int) -> int:
        """LLM positions per side for a `codes_side x codes_side` VQ grid."""
        return codes_side // 2 if self.config.downsample else codes_side

    def embed_codes(self, codes: Tensor, side: int) -> Tensor:
        """VQ codes `[N, side*side]` (raster order, mask = vq_mask_id) -> zero-padded LLM rows
        `[N, positions, d_model]` (gen_embedding -> 2x2 conv downsample -> gen_embedding_2, §3.3)."""
        m = self.model
        h = m.gen_embedding(codes)
        if self.config.downsample:
            if side % 2:
                raise ValueError(f"the 2x2 downsample needs an even VQ grid, got {side}x{side}")
            h = m.downsample_gen["downsample"](h, side, side)
        h = m.gen_embedding_2(h)
        return F.pad(h, (0, self.config.d_model - self.config.d_model_gen))

    def code_logits(self, hidden: Tensor, side: int) -> Tensor:
        """Post-ln_f gen rows `[N, positions, d_model]` -> logits over the codebook `[N, side*side, K]`."""
        m = self.model
        h = hidden[..., : self.config.d_model_gen]
        if self.config.downsample:
            h = m.upsample_gen["upsample"](h, side // 2, side // 2)
        return m.gen_predictor(m.gen_predictor_2(h))

    def encode_tiles(self, pixels: Tensor) -> Tensor:
        """SigLIP tiles `[T, 3, S, S]` in [-1, 1] -> projected features `[T, tokens, d_model]`."""
        m = self.model
        feats = m.vision_tower(pixels.to(m.mm_projector[0].weight.dtype))
        return m.mm_projector(m.vision_resampler(feats))

    # --- the transformer ---------------------------------------------------------------------
    def forward(self, embeds: Tensor, *, gen_mask: Tensor | None = None, valid: Tensor | None = None,
                positions: Tensor | None = None, cache: PrefixCache | None = None,
                use_cache: bool = False, image_only: bool = False) -> tuple[Tensor, PrefixCache | None]:
        """Run all blocks over `embeds [B, L, d]`; returns post-ln_f states `[B, L, d]` and, with
        `use_cache`, the prefix cache of this call (appended to `cache` when one was given).

        `valid [B, L]` marks real positions (padding is never attended); `positions [B, L]` are
        RoPE indices (default: consecutive after the cache). `gen_mask [B, L]` routes rows to
        the generation branch. `image_only` skips the text rows after the last joint block: they
        cannot reach the image any more (decoupled attention), so image logits are unchanged while
        the text rows' final states become meaningless (the release's IGNORE_TEXT_LOSS, §3.2).
        """
        b, n, _ = embeds.shape
        dev = embeds.device
        if valid is None:
            valid = torch.ones(b, n, dtype=torch.bool, device=dev)
        if positions is None:
            start = cache.next_position if cache is not None else torch.zeros(b, dtype=torch.long, device=dev)
            positions = start[:, None] + valid.long().cumsum(1) - 1
            positions = positions.clamp(min=0)
        if gen_mask is not None and not bool(gen_mask.any()):
            gen_mask = None
        key_valid = valid if cache is None else torch.cat([cache.valid, valid], dim=1)
        row_gen = gen_mask if gen_mask is not None else torch.zeros_like(valid)
        key_gen = row_gen if cache is None else torch.cat([cache.gen, row_gen], dim=1)
        if gen_mask is None and cache is not None and bool(cache.gen.any()):
            gen_mask = row_gen  # the cache holds gen-routed keys: keep the groups apart
        masks = self._masks(key_valid, gen_mask, cache)
        rope = rope_tables(positions, self.config.head_dim, self.config.rope_theta)
        x = embeds
        new_layers = []
        for i, block in enumerate(self.model.transformer.blocks):
            if image_only and i == self.config.joint_layers and gen_mask is not None and cache is None:
                x = self._gen_rows_only(x, gen_mask, positions, i)
                break
            x, current = block(x, gen_mask, rope, masks, cache.layers[i] if cache else None,
                               self.attn_implementation)
            if use_cache:
                new_layers.append(current if cache is None else LayerCache(
                    torch.cat([cache.layers[i].keys, current.keys], 2),
                    torch.cat([cache.layers[i].values, current.values], 2)))
        x = self.model.transformer.ln_f(x)
        new_cache = None
        if use_cache:
            last = (positions.masked_fill(~valid, -1).max(dim=1).values + 1)
            new_cache = PrefixCache(new_layers, key_valid, last, key_gen)
        return x, new_cache

    def _gen_rows_only(self, x: Tensor, gen: Tensor, positions: Tensor, start: int) -> Tensor:
        """Run blocks `start..` (all decoupled) on each row's gen-branch rows alone, padded to the
        longest row with the padding never attended."""
        b, d = x.shape[0], x.shape[-1]
        counts = gen.sum(1)
        m = int(counts.max())
        slot_valid = torch.arange(m, device=x.device)[None, :] < counts[:, None]  # [b, m]
        xg = x.new_zeros(b, m, d)
        xg[slot_valid] = x[gen]
        pos = positions.new_zeros(b, m)
        pos[slot_valid] = positions[gen]
        rope = rope_tables(pos, self.config.head_dim, self.config.rope_theta)
        key_mask = None if bool(slot_valid.all()) else slot_valid[:, None, None, :]
        all_gen = torch.ones(b, m, dtype=torch.bool, device=x.device)
        for block in self.model.transformer.blocks[start:]:
            xg, _ = block(xg, all_gen, rope, Masks(key_mask, key_mask), None, self.attn_implementation)
        out = x.clone()
        out[gen] = xg[slot_valid]
        return out

    @staticmethod
    def _masks(key_valid: Tensor, gen: Tensor | None, cache: PrefixCache | None) -> Masks:
        all_valid = bool(key_valid.all())
        joint = None if all_valid else key_valid[:, None, None, :]
        if gen is None:
            return Masks(joint, joint)
        key_gen = gen if cache is None else torch.cat([cache.gen, gen], dim=1)
        split = (gen[:, :, None] == key_gen[:, None, :]) & key_valid[:, None, :]
        return Masks(joint, split[:, None])

    def text_logits(self, hidden: Tensor) -> Tensor:
        return self.model.transformer.ff_out(hidden)
