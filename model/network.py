"""The Lavida-O network: LLaDA understanding branch + Elastic-MoT generation branch in one stack.

Module and parameter names reproduce the release's state_dict keys (LaVida-O
`llava/model/language_model/llada/modeling_llada.py:971-1040, 1381-1415`, `llava/model/llava_arch.py:70-185`),
so the released safetensors load with `strict=True`. The block math follows `modeling_llada.py:971-1254`:

- every position lives in one residual stream `[B, L, d_model]`; positions flagged in `gen_mask`
  (generated-image and source-VQ tokens) hold a `d_model_gen`-wide state zero-padded to d_model
  and use the `*_vision` sub-layers, everything else uses the understanding sub-layers;
- blocks `0..dual_tower_layers` attend jointly over the whole sequence; later blocks attend
  within each branch only (text also sees the prefix cache, image tokens never do);
- both branches share `attn_out`; gen rows keep only the first d_model_gen channels of its update;
- the shared `ln_f` normalises the zero-padded gen rows over all d_model channels (generate.py:153-156).

Attention is bidirectional everywhere (no causal mask, even with a cache, modeling_llada.py:808-844). Batching rows of
different lengths is correct: padded keys are masked and each row carries its own positions, so a
row's result does not depend on what else is in the batch up to float rounding (kernels may sum in
another order at another batch size: about 1e-7 in fp32), and sampled tokens or codes change only
where two candidates are within that rounding of a tie (the release only ever ran batch 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lavida_bench.model.config import LavidaConfig

AttnImpl = Literal["sdpa", "eager"]


class RMSNorm(nn.Module):
    """RMSNorm with fp32 statistics, cast back to the input dtype before the weight (modeling_llada.py:331-359)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        y = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)
        return y * self.weight.to(x.dtype)


def rope_tables(positions: Tensor, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos/sin tables `[B, 1, L, head_dim]` in fp32, NeoX rotate-half layout (modeling_llada.py:393-475).

    Inverse frequencies as the release writes them, `1 / theta ** (i / d)` (modeling_llada.py:423),
    not `theta ** (-i / d)`: the two differ by a float32 ulp, up to 5e-4 in the tables."""
    exponents = torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim
    inv_freq = 1.0 / (theta ** exponents)
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
    has_gen: bool = False  # host copies of `gen.any()` and `valid.all()`, so no pass reads them back
    all_valid: bool = False

    @property
    def length(self) -> int:
        return self.valid.shape[1]


@dataclass
class Masks:
    """Attention masks of one forward pass, shared by all blocks."""

    joint: Tensor | None
    split: Tensor | None


@dataclass(frozen=True)
class Route:
    """Which positions of a `[B, L]` batch go to the generation branch, with the flat row indices
    a forward pass needs precomputed, so routing is `index_select`/`index_copy_` over shapes known
    in advance: no boolean-mask gathers, no reads of tensor data back to the host per step.

    Built once per batch (`Route.of`, the one host read); the flat order equals boolean-mask
    order (row-major), so results are the same as `x[gen]` / `x[~gen]` would give."""

    mask: Tensor  # [B, L] bool: True = generation branch
    text_rows: Tensor  # [N_text] flat indices into B*L
    gen_rows: Tensor  # [N_gen]
    gen_counts: tuple[int, ...]  # generation positions per row (host)
    slots: Tensor | None = None  # rows of unequal counts: flat places of gen rows in [B, max count]

    @classmethod
    def of(cls, mask: Tensor) -> "Route":
        flat = mask.reshape(-1)
        counts = tuple(int(c) for c in mask.sum(1).tolist())
        m = max(counts, default=0)
        slots = None
        if min(counts, default=0) < m:
            slots = torch.tensor([r * m + j for r, c in enumerate(counts) for j in range(c)], device=mask.device)
        return cls(mask, (~flat).nonzero().squeeze(-1), flat.nonzero().squeeze(-1), counts, slots)

    @property
    def any_gen(self) -> bool:
        return any(self.gen_counts)

    @property
    def all_gen(self) -> bool:
        """Every position goes to the generation branch (host arithmetic on the counts)."""
        return sum(self.gen_counts) == self.mask.numel()

    def split(self, x: Tensor, d_gen: int) -> tuple[Tensor, Tensor]:
        """`[B, L, d]` -> (text rows `[N_text, d]`, gen rows `[N_gen, d_gen]`: their first d_gen
        channels, the width of the zero-padded generation state, modeling_llada.py:1062-1081)."""
        flat = x.reshape(-1, x.shape[-1])
        return flat.index_select(0, self.text_rows), flat.index_select(0, self.gen_rows)[:, :d_gen]

    def merge(self, text: Tensor, gen: Tensor) -> Tensor:
        """Inverse of `split` for per-row outputs of one width: -> `[B, L, width]`."""
        b, n = self.mask.shape
        out = text.new_empty(b * n, text.shape[-1])
        out.index_copy_(0, self.text_rows, text)
        out.index_copy_(0, self.gen_rows, gen.to(text.dtype))
        return out.view(b, n, -1)


def _all_gen(b: int, m: int, device: torch.device) -> Route:
    """Every position routed to the generation branch (no host read needed to build it)."""
    rows = torch.arange(b * m, device=device)
    return Route(torch.ones(b, m, dtype=torch.bool, device=device), rows[:0], rows, (m,) * b)


def route_mask(gen: Tensor | Route | None) -> Tensor | None:
    """The bool `[B, L]` mask of a forward call's `gen_mask`, whichever form it came in."""
    return gen.mask if isinstance(gen, Route) else gen


def as_route(gen: Tensor | Route | None) -> Route | None:
    """Accept a boolean mask for convenience (one host read) or a prebuilt Route; None when no
    position is routed to the generation branch."""
    route = Route.of(gen) if isinstance(gen, Tensor) else gen
    return route if route is not None and route.any_gen else None


class Block(nn.Module):
    """One LLaDA-Llama block carrying both branches (keys `blocks.N.*`, modeling_llada.py:971-1040)."""

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

    def routed(self, x: Tensor, route: Route | None, text_fn: Callable[[Tensor], list[Tensor]],
               gen_fn: Callable[[Tensor], list[Tensor]]) -> list[Tensor]:
        """Run the understanding sub-layers (`text_fn`) on text rows and the `_vision` ones
        (`gen_fn`, on the first d_gen channels) on generation rows; merge each output."""
        if route is None:
            return text_fn(x)
        if route.all_gen:  # the decoupled blocks of image_only: no text rows to run or merge
            b, n, d = x.shape
            return [out.view(b, n, -1) for out in gen_fn(x.reshape(b * n, d)[:, :self.d_gen])]
        xt, xv = route.split(x, self.d_gen)
        return [route.merge(t, v) for t, v in zip(text_fn(xt), gen_fn(xv))]

    def _qkv(self, x: Tensor, route: Route | None) -> list[Tensor]:
        def text(h: Tensor) -> list[Tensor]:
            h = self.attn_norm(h)
            return [self.q_proj(h), self.k_proj(h), self.v_proj(h)]

        def gen(h: Tensor) -> list[Tensor]:
            h = self.attn_norm_vision(h)
            return [self.q_proj_vision(h), self.k_proj_vision(h), self.v_proj_vision(h)]

        return self.routed(x, route, text, gen)

    def _mlp(self, x: Tensor, route: Route | None) -> Tensor:
        def text(h: Tensor) -> list[Tensor]:
            n = self.ff_norm(h)
            return [h + self.ff_out(F.silu(self.ff_proj(n)) * self.up_proj(n))]

        def gen(h: Tensor) -> list[Tensor]:  # gen rows keep the first d_gen channels (modeling_llada.py:1062-1081)
            n = self.ff_norm_vision(h)
            out = h + self.ff_out_vision(F.silu(self.ff_proj_vision(n)) * self.up_proj_vision(n))
            return [F.pad(out, (0, x.shape[-1] - self.d_gen))]

        return self.routed(x, route, text, gen)[0]

    def forward(self, x: Tensor, route: Route | None, rope: tuple[Tensor, Tensor], masks: Masks,
                cache: LayerCache | None, impl: AttnImpl) -> tuple[Tensor, LayerCache]:
        b, n, _ = x.shape
        q, k, v = (t.view(b, n, self.n_heads, self.head_dim).transpose(1, 2) for t in self._qkv(x, route))
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        current = LayerCache(k, v)
        if cache is not None:
            k, v = torch.cat([cache.keys, k], dim=2), torch.cat([cache.values, v], dim=2)
        a = attention(q, k, v, masks.joint if self.joint else masks.split, impl)
        x = x + self.attn_out(a.transpose(1, 2).reshape(b, n, -1))  # shared projection (modeling_llada.py:1084-1254)
        return self._mlp(x, route), current


class Transformer(nn.Module):
    """`model.transformer.*`: embeddings, blocks, final norm and the untied text head."""

    def __init__(self, cfg: LavidaConfig):
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.ln_f = RMSNorm(cfg.d_model, cfg.rms_norm_eps)
        self.ff_out = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)


class ConvResample(nn.Module):
    """diffusers-style Down/Upsample2D with an RMSNorm over channels (keys `.norm`, `.conv`, llava_arch.py:110-131)."""

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
        # Output of the last kept layer, before post_layernorm ("layer -2" of so400m, siglip_encoder.py:575-601).
        out = self.vision_tower["vision_model"](pixel_values=pixels, output_hidden_states=True)
        return out.hidden_states[-1]


class Resampler(nn.Module):
    def __init__(self, cfg: LavidaConfig):
        super().__init__()
        self.pool = nn.Conv2d(cfg.mm_hidden_size, cfg.mm_hidden_size, cfg.pool_stride, cfg.pool_stride)

    def forward(self, feats: Tensor) -> Tensor:
        side = int(math.isqrt(feats.shape[1]))
        grid = feats.transpose(1, 2).reshape(feats.shape[0], -1, side, side)
        return self.pool(grid).flatten(2).transpose(1, 2)  # odd last row/column dropped (spatial_pool.py)


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
        `[N, positions, d_model]` (gen_embedding -> 2x2 conv downsample -> gen_embedding_2, llava_arch.py:235-247)."""
        m = self.model
        h = m.gen_embedding(codes)
        if self.config.downsample:
            if side % 2:
                raise ValueError(f"the 2x2 downsample needs an even VQ grid, got {side}x{side}")
            h = m.downsample_gen["downsample"](h, side, side)
        h = m.gen_embedding_2(h)
        return F.pad(h, (0, self.config.d_model - self.config.d_model_gen))

    def code_logits(self, hidden: Tensor, side: int, at: Tensor | None = None) -> Tensor:
        """Post-ln_f gen rows `[N, positions, d_model]` -> logits over the codebook `[N, side*side, K]`
        (llava_arch.py:249-265), or with `at [N, m]` only at those code positions `[N, m, K]`.

        With `at`, the last projection runs one row at a time into one `[side*side, K]` buffer and
        keeps only the picked entries: the same numbers (every row goes through the same kernel),
        without an N x side*side x K tensor that outgrows the CPU caches (or N fresh buffers)."""
        m = self.model
        h = hidden[..., : self.config.d_model_gen]
        if self.config.downsample:
            h = m.upsample_gen["upsample"](h, side // 2, side // 2)
        head = m.gen_predictor
        h = head[1](head[0](m.gen_predictor_2(h)))
        if at is None:
            return head[2](h)
        weight = head[2].weight.t()
        out = h.new_empty(h.shape[1], weight.shape[1])
        return torch.stack([torch.mm(row, weight, out=out).index_select(0, places) for row, places in zip(h, at)])

    def encode_tiles(self, pixels: Tensor) -> Tensor:
        """SigLIP tiles `[T, 3, S, S]` in [-1, 1] -> projected features `[T, tokens, d_model]`."""
        m = self.model
        feats = m.vision_tower(pixels.to(m.mm_projector[0].weight.dtype))
        return m.mm_projector(m.vision_resampler(feats))

    # --- the transformer ---------------------------------------------------------------------
    def forward(self, embeds: Tensor, *, gen_mask: Tensor | Route | None = None, valid: Tensor | None = None,
                positions: Tensor | None = None, cache: PrefixCache | None = None,
                use_cache: bool = False, image_only: bool = False) -> tuple[Tensor, PrefixCache | None]:
        """Run all blocks over `embeds [B, L, d]`; returns post-ln_f states `[B, L, d]` and, with
        `use_cache`, the prefix cache of this call (appended to `cache` when one was given).

        `valid [B, L]` marks real positions (padding is never attended; None = all real);
        `positions [B, L]` are RoPE indices (default: consecutive after the cache). `gen_mask`
        routes rows to the generation branch: a prebuilt `Route` (no host reads, what the
        pipeline passes every step) or a bool `[B, L]` mask. `image_only` skips the text rows
        after the last joint block: they cannot reach the image any more (decoupled attention),
        so image logits are unchanged while the text rows' final states become meaningless (the
        release's IGNORE_TEXT_LOSS, modeling_llada.py:1107-1109).
        """
        b, n, _ = embeds.shape
        all_valid = valid is None and (cache is None or cache.all_valid)
        valid = torch.ones(b, n, dtype=torch.bool, device=embeds.device) if valid is None else valid
        if positions is None:
            start = cache.next_position if cache is not None else torch.zeros_like(valid[:, 0], dtype=torch.long)
            positions = (start[:, None] + valid.long().cumsum(1) - 1).clamp(min=0)
        route = as_route(gen_mask)
        if route is None and cache is not None and cache.has_gen:
            route = Route.of(torch.zeros_like(valid))  # the cache holds gen-routed keys: keep the groups apart
        row_gen = route.mask if route is not None else torch.zeros_like(valid)
        key_valid = valid if cache is None else torch.cat([cache.valid, valid], dim=1)
        key_gen = row_gen if cache is None else torch.cat([cache.gen, row_gen], dim=1)
        masks = self._masks(key_valid, all_valid, None if route is None else key_gen, row_gen)
        x, new_layers = self._blocks(embeds, route, positions, masks, cache, (use_cache, image_only and cache is None))
        x = self.model.transformer.ln_f(x)
        if not use_cache:
            return x, None
        last = positions.masked_fill(~valid, -1).max(dim=1).values + 1
        has_gen = route is not None and route.any_gen or (cache is not None and cache.has_gen)
        return x, PrefixCache(new_layers, key_valid, last, key_gen, has_gen, all_valid)

    def _blocks(self, x: Tensor, route: Route | None, positions: Tensor, masks: Masks,
                cache: PrefixCache | None, flags: tuple[bool, bool]) -> tuple[Tensor, list[LayerCache]]:
        """All blocks; `flags` = (keep a cache, image_only: the decoupled blocks on the generation
        rows alone)."""
        keep, image_only = flags
        rope = rope_tables(positions, self.config.head_dim, self.config.rope_theta)
        layers: list[LayerCache] = []
        for i, block in enumerate(self.model.transformer.blocks):
            if image_only and i == self.config.joint_layers and route is not None:
                return self._gen_rows_only(x, route, positions, i), layers
            x, current = block(x, route, rope, masks, cache.layers[i] if cache else None, self.attn_implementation)
            if keep:
                layers.append(current if cache is None else LayerCache(
                    torch.cat([cache.layers[i].keys, current.keys], 2),
                    torch.cat([cache.layers[i].values, current.values], 2)))
        return x, layers

    def _gen_rows_only(self, x: Tensor, route: Route, positions: Tensor, start: int) -> Tensor:
        """Run blocks `start..` (all decoupled) on each row's gen-branch rows alone, padded to the
        longest row with the padding never attended (row counts are host values of the Route)."""
        b, n, d = x.shape
        m, slots = max(route.gen_counts), route.slots
        xg = self._into_slots(x.reshape(b * n, d).index_select(0, route.gen_rows), slots, (b, m, d))
        pos = self._into_slots(positions.reshape(b * n, 1).index_select(0, route.gen_rows), slots, (b, m, 1))
        rope = rope_tables(pos[..., 0], self.config.head_dim, self.config.rope_theta)
        key_mask = None  # equal counts (every drawing batch): no padding slots to hide
        if slots is not None:
            counts = torch.tensor(route.gen_counts, device=x.device)
            key_mask = (torch.arange(m, device=x.device)[None, :] < counts[:, None])[:, None, None, :]
        all_gen = _all_gen(b, m, x.device)
        for block in self.model.transformer.blocks[start:]:
            xg, _ = block(xg, all_gen, rope, Masks(key_mask, key_mask), None, self.attn_implementation)
        flat = xg.reshape(b * m, d) if slots is None else xg.reshape(b * m, d).index_select(0, slots)
        return x.reshape(b * n, d).index_copy(0, route.gen_rows, flat).view(b, n, d)

    @staticmethod
    def _into_slots(rows: Tensor, slots: Tensor | None, shape: tuple[int, int, int]) -> Tensor:
        """Flat gen rows `[N, c]` -> `[b, m, c]`, zero-filled where a row has fewer than m."""
        if slots is None:
            return rows.view(shape)
        out = rows.new_zeros(shape[0] * shape[1], shape[2])
        return out.index_copy(0, slots, rows).view(shape)

    @staticmethod
    def _masks(key_valid: Tensor, all_valid: bool, key_gen: Tensor | None, row_gen: Tensor) -> Masks:
        joint = None if all_valid else key_valid[:, None, None, :]
        if key_gen is None:
            return Masks(joint, joint)
        split = (row_gen[:, :, None] == key_gen[:, None, :]) & key_valid[:, None, :]
        return Masks(joint, split[:, None])

    def text_logits(self, hidden: Tensor) -> Tensor:
        return self.model.transformer.ff_out(hidden)
