"""The hardware floor of a measured case: FLOPs and bytes from the work the math requires.

A case is recorded as the list of network calls it made (`Pass`, filled in by
`speed.record.record_passes`). For each pass the arithmetic is what the active parameters and
sequence lengths demand, nothing more:

- linear layers: 2 FLOPs per weight per row that uses it. A text row touches the understanding
  sub-layers of every block (4 d^2 attention incl. the output projection + 3 d m MLP); a gen row
  touches the `_vision` sub-layers (3 d_gen d for q/k/v + 3 d_gen m_gen MLP) and the SHARED d^2
  output projection (network.py Block; LaVida-O `modeling_llada.py:1084-1254`). With `image_only`, text rows stop
  after the joint blocks.
- attention: 4 d FLOPs per (query, visible key) pair (QK^T and AV). Joint blocks: every row sees
  its whole sequence plus the prefix cache; decoupled blocks: text sees text + cache, gen sees gen
  (LaVida-O modeling_llada.py:1084-1254). Masked-out pairs are not counted: a fused kernel that skips them is the floor.
- heads: 2 d V per text-logit row; per VQ code 2 (2 d_gen^2 + d_gen K) for gen_predictor_2 and
  gen_predictor plus the transposed 2x2 conv (2 d_gen^2 per code), and the mirror image for
  `embed_codes` (llava_arch.py:235-265); SigLIP tiles at their patch count (siglip_encoder.py:575-601).
- bytes: every weight a pass uses is read once (in the model dtype) and every cached key/value is
  read once; activations are not counted (they can live in on-chip memory for a fused kernel).

The time a pass implies is the roofline max(FLOPs / matmul rate, bytes / bandwidth) at the
device's measured rates (timing.measure_device); a case's floor is the sum over its passes.
VQ encode/decode are excluded (the release's VQ config is not derivable from the code).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from lavida_bench.model.config import LavidaConfig
from lavida_bench.timing import DeviceRates, floor_seconds


@dataclass(frozen=True)
class RowShape:
    """One sequence of a pass: und-branch query rows, gen-branch query rows, cached (text) keys."""

    text: int
    gen: int = 0
    cache: int = 0


@dataclass
class Pass:
    """One network call of any kind, with what it processed."""

    kind: str  # forward | text_logits | code_logits | embed_codes | encode_tiles
    rows: list[RowShape] = field(default_factory=list)  # forward only
    image_only: bool = False  # forward only: text rows skipped after the joint blocks
    prefix: bool = False  # forward only: this call built a prefix cache from scratch
    count: int = 0  # text_logits: rows; code_logits / embed_codes: VQ codes; encode_tiles: tiles

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["rows"] = [[r.text, r.gen, r.cache] for r in self.rows]
        return out


@dataclass(frozen=True)
class Cost:
    flops: float
    bytes: float

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.flops + other.flops, self.bytes + other.bytes)


ZERO = Cost(0.0, 0.0)


def und_row_weights(cfg: LavidaConfig) -> int:
    """Weights one text row uses per block: q, k, v, attn_out (4 d^2) + gated MLP (3 d m)."""
    return 4 * cfg.d_model ** 2 + 3 * cfg.d_model * cfg.mlp_hidden_size


def gen_row_weights(cfg: LavidaConfig) -> int:
    """Weights one gen row uses per block: q/k/v d_gen->d, the shared attn_out d^2, gen MLP."""
    d, dg = cfg.d_model, cfg.d_model_gen
    return 3 * dg * d + d * d + 3 * dg * cfg.mlp_hidden_size_gen


def forward_cost(cfg: LavidaConfig, p: Pass, dtype_bytes: int) -> Cost:
    d, n_layers, joint = cfg.d_model, cfg.n_layers, cfg.joint_layers
    text_layers = joint if p.image_only else n_layers
    text_rows = sum(r.text for r in p.rows)
    gen_rows = sum(r.gen for r in p.rows)
    flops = 2.0 * (text_rows * text_layers * und_row_weights(cfg) + gen_rows * n_layers * gen_row_weights(cfg))
    pairs_joint = sum((r.text + r.gen) * (r.text + r.gen + r.cache) for r in p.rows)
    pairs_split_text = sum(r.text * (r.text + r.cache) for r in p.rows)
    pairs_split_gen = sum(r.gen * r.gen for r in p.rows)
    split = n_layers - joint
    text_split_layers = 0 if p.image_only else split
    flops += 4.0 * d * (joint * pairs_joint + text_split_layers * pairs_split_text + split * pairs_split_gen)
    und_layers = text_layers if text_rows else 0
    weights = und_layers * und_row_weights(cfg)
    if gen_rows:  # attn_out is shared: read once per block, already counted where text rows ran
        weights += n_layers * (gen_row_weights(cfg) - d * d) + (n_layers - und_layers) * d * d
    cache_layers = und_layers if text_rows else (joint if gen_rows else 0)
    cache_bytes = sum(r.cache for r in p.rows) * 2 * d * cache_layers * dtype_bytes
    return Cost(flops, float(weights * dtype_bytes + cache_bytes))


def vision_tile_weights(cfg: LavidaConfig) -> tuple[int, int]:
    """(weights per SigLIP layer, patches per tile): q, k, v, o + fc1, fc2 (siglip_encoder.py:575-601)."""
    v = cfg.vision
    return 4 * v.hidden_size ** 2 + 2 * v.hidden_size * v.intermediate_size, (v.image_size // v.patch_size) ** 2


def encode_tiles_cost(cfg: LavidaConfig, tiles: int, dtype_bytes: int) -> Cost:
    v = cfg.vision
    per_layer, patches = vision_tile_weights(cfg)
    side = int(patches ** 0.5) // cfg.pool_stride
    out_tokens = side * side
    proj = cfg.mm_hidden_size * cfg.d_model + cfg.d_model ** 2
    pool = cfg.mm_hidden_size ** 2 * cfg.pool_stride ** 2
    flops = tiles * (2.0 * v.num_layers * per_layer * patches + 4.0 * v.hidden_size * v.num_layers * patches ** 2
                     + 2.0 * out_tokens * (proj + pool))
    weights = v.num_layers * per_layer + proj + pool
    return Cost(flops, float(weights * dtype_bytes))


def code_head_weights(cfg: LavidaConfig) -> int:
    """gen_predictor_2 (d_gen^2) + gen_predictor (d_gen^2 + d_gen K), applied per VQ code (llava_arch.py:249-265)."""
    dg = cfg.d_model_gen
    return 2 * dg * dg + dg * cfg.codebook_size


def resample_weights(cfg: LavidaConfig) -> int:
    """The 2x2 (transposed) conv: 4 d_gen^2 weights; per VQ code that is d_gen^2 MACs."""
    return 4 * cfg.d_model_gen ** 2 if cfg.downsample else 0


def pass_cost(cfg: LavidaConfig, p: Pass, dtype_bytes: int) -> Cost:
    dg = cfg.d_model_gen
    if p.kind == "forward":
        return forward_cost(cfg, p, dtype_bytes)
    if p.kind == "text_logits":
        return Cost(2.0 * p.count * cfg.d_model * cfg.vocab_size, float(cfg.d_model * cfg.vocab_size * dtype_bytes))
    if p.kind == "code_logits":
        conv = dg * dg if cfg.downsample else 0  # per code: one of the four kernel taps
        return Cost(2.0 * p.count * (code_head_weights(cfg) + conv),
                    float((code_head_weights(cfg) + resample_weights(cfg)) * dtype_bytes))
    if p.kind == "embed_codes":
        conv = dg * dg if cfg.downsample else 0
        per_code = dg * dg + conv  # gen_embedding's linear + the 2x2 conv; gen_embedding_2 is per position
        positions = p.count // 4 if cfg.downsample else p.count
        return Cost(2.0 * (p.count * per_code + positions * dg * dg),
                    float((2 * dg * dg + resample_weights(cfg) + p.count * dg) * dtype_bytes))
    if p.kind == "encode_tiles":
        return encode_tiles_cost(cfg, p.count, dtype_bytes)
    raise ValueError(f"unknown pass kind {p.kind!r}")


def workload_cost(cfg: LavidaConfig, passes: Iterable[Pass], dtype_bytes: int) -> Cost:
    total = ZERO
    for p in passes:
        total = total + pass_cost(cfg, p, dtype_bytes)
    return total


def workload_floor(cfg: LavidaConfig, passes: Iterable[Pass], dtype_bytes: int, rates: DeviceRates) -> float:
    """Sum of per-pass rooflines: each pass is either compute- or memory-bound on its own."""
    total = 0.0
    for p in passes:
        c = pass_cost(cfg, p, dtype_bytes)
        total += floor_seconds(c.flops, c.bytes, rates)
    return total


def without_prompt_recompute(passes: list[Pass]) -> list[Pass]:
    """The same image workload if the conditioning prompt could be cached: the first forward pass
    stays whole, later ones keep only gen rows and read the prompt as cache.

    The release's math does NOT allow this for images: in the joint blocks every prompt row attends
    to the image rows, which change each step (modeling_llada.py:1084-1254), so the prompt's keys/values change too. This
    only quantifies what such a cache would save, as an upper bound.
    """
    out, first = [], True
    for p in passes:
        if p.kind != "forward" or first:
            first = first and p.kind != "forward"
            out.append(p)
            continue
        out.append(Pass("forward", [RowShape(0, r.gen, r.text + r.cache) for r in p.rows], p.image_only))
    return out


def summarize(cfg: LavidaConfig, passes: list[Pass], dtype_bytes: int, rates: DeviceRates | None,
              measured_s: float | None) -> dict[str, Any]:
    """FLOPs, bytes, floor seconds and measured/floor for one measured workload."""
    cost = workload_cost(cfg, passes, dtype_bytes)
    out: dict[str, Any] = {"flops": cost.flops, "bytes": cost.bytes}
    if rates is not None:
        floor = workload_floor(cfg, passes, dtype_bytes, rates)
        out["floor_s"] = floor
        out["measured_over_floor"] = (measured_s / floor) if measured_s and floor > 0 else None
    return out
