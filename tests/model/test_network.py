"""The network against an independent re-derivation of the release's math (tests/model/reference.py),
plus the attention-structure properties the release relies on: bidirectionality, the joint /
decoupled boundary (layer_id <= dual_tower_layers is joint), SDPA == eager, padding-invariance and
a cached prefix with the release's prefix-LM semantics (LaVida-O `modeling_llada.py:971-1254`,
`llava/model/language_model/llada/generate.py:217-390`).
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from lavida_bench.model.config import LavidaConfig
from lavida_bench.model.network import LavidaNetwork
from torch import Tensor

from tests.model import reference as ref
from tests.model.helpers import scrambled

TINY = LavidaConfig.tiny()
ATOL, RTOL = 2e-5, 1e-4  # fp32 network vs float64 reference


def cfg_with(n_layers: int, dual_tower_layers: int) -> LavidaConfig:
    return dataclasses.replace(TINY, n_layers=n_layers, dual_tower_layers=dual_tower_layers)


def sequence(gen: list[bool], cfg: LavidaConfig = TINY, seed: int = 1) -> tuple[Tensor, Tensor]:
    """Random input rows `[1, L, d]` (gen rows zero beyond d_model_gen, as embed_codes makes them)
    and the routing mask `[1, L]`."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, len(gen), cfg.d_model, generator=g)
    mask = torch.tensor([gen])
    x[mask] = torch.cat([x[mask][:, : cfg.d_model_gen], torch.zeros(int(mask.sum()), cfg.d_model - cfg.d_model_gen)], 1)
    return x, mask


def run(net: LavidaNetwork, x: Tensor, gen: Tensor | None, **kw) -> Tensor:
    return net(x, gen_mask=gen, **kw)[0]


def changed(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max())


MIXED = [False, False, True, True, False, True, True, False, False, True, False]  # interleaved on purpose


# --- block math ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dual_tower_layers", [0, -1], ids=["joint", "decoupled"])
def test_one_block_text_only(dual_tower_layers: int) -> None:
    cfg = cfg_with(1, dual_tower_layers)
    net = scrambled(cfg)
    x, _ = sequence([False] * 9, cfg)
    want = ref.stack(net.state_dict(), x[0], [False] * 9, cfg)
    torch.testing.assert_close(run(net, x, None)[0].double(), want, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("dual_tower_layers", [0, -1], ids=["joint", "decoupled"])
def test_one_block_mixed_rows(dual_tower_layers: int) -> None:
    cfg = cfg_with(1, dual_tower_layers)
    net = scrambled(cfg, seed=3)
    x, gen = sequence(MIXED, cfg)
    want = ref.stack(net.state_dict(), x[0], MIXED, cfg)
    torch.testing.assert_close(run(net, x, gen)[0].double(), want, atol=ATOL, rtol=RTOL)


def test_full_tiny_stack_mixed_rows() -> None:
    """4 blocks, dual_tower_layers=1: blocks 0-1 joint, 2-3 decoupled, then ln_f."""
    net = scrambled(TINY, seed=4)
    x, gen = sequence(MIXED)
    want = ref.stack(net.state_dict(), x[0], MIXED, TINY)
    torch.testing.assert_close(run(net, x, gen)[0].double(), want, atol=ATOL, rtol=RTOL)


def test_ln_f_normalises_padded_gen_rows_over_d_model() -> None:
    """generate.py:153-156: a gen row [v, 0] is divided by sqrt(sum(v^2)/d_model + eps), not a d_gen-wide RMS,
    and multiplied by ln_f.weight[:d_gen]; its padding channels stay exactly zero."""
    cfg = cfg_with(0, 1)  # no blocks: forward is ln_f alone
    net = scrambled(cfg, seed=5)
    x, gen = sequence([False, True], cfg)
    out = run(net, x, gen)[0]
    v, w = x[0, 1, : cfg.d_model_gen].double(), net.model.transformer.ln_f.weight.double()
    want = v / torch.sqrt((v * v).sum() / cfg.d_model + cfg.rms_norm_eps) * w[: cfg.d_model_gen]
    torch.testing.assert_close(out[1, : cfg.d_model_gen].double(), want, atol=1e-6, rtol=1e-5)
    assert torch.equal(out[1, cfg.d_model_gen:], torch.zeros(cfg.d_model - cfg.d_model_gen))


def test_gen_rows_stay_zero_padded_through_blocks() -> None:
    net = scrambled(TINY, seed=6)
    x, gen = sequence(MIXED)
    out = run(net, x, gen)[0]
    assert torch.equal(out[gen[0], TINY.d_model_gen:], torch.zeros(int(gen.sum()), TINY.d_model - TINY.d_model_gen))
    assert out[~gen[0], TINY.d_model_gen:].abs().min() > 0  # text rows use all channels


def test_all_false_gen_mask_equals_no_gen_mask() -> None:
    """generate.py:184-185: the release passes None or an all-false mask for text-only calls; both are the plain block."""
    net = scrambled(TINY, seed=7)
    x, _ = sequence([False] * 8)
    assert torch.equal(run(net, x, None), run(net, x, torch.zeros(1, 8, dtype=torch.bool)))


# --- attention structure ------------------------------------------------------------------------
def test_bidirectional_later_token_changes_earlier_output() -> None:
    net = scrambled(TINY, seed=8)
    x, _ = sequence([False] * 8)
    y = x.clone()
    y[0, -1] += 1.0
    a, b = run(net, x, None), run(net, y, None)
    assert changed(a[0, 0], b[0, 0]) > 1e-3  # no causal mask (modeling_llada.py:808-844)
    x, gen = sequence([False] * 4 + [True] * 4)
    y = x.clone()
    y[0, -1, : TINY.d_model_gen] += 1.0  # a LATER gen row ...
    assert changed(run(net, x, gen)[0, 0], run(net, y, gen)[0, 0]) > 1e-3  # ... reaches the FIRST text row


def test_boundary_block_is_joint() -> None:
    """With dual_tower_layers=0, block 0 is joint (layer_id <= dual_tower_layers,
    modeling_llada.py:1010-1012): text rows depend on gen rows and vice versa."""
    net = scrambled(cfg_with(1, 0), seed=9)
    x, gen = sequence(MIXED)
    y = x.clone()
    y[gen] += torch.cat([torch.ones(int(gen.sum()), TINY.d_model_gen), torch.zeros(int(gen.sum()), 32)], 1)
    assert changed(run(net, x, gen)[~gen], run(net, y, gen)[~gen]) > 1e-3
    z = x.clone()
    z[~gen] += 1.0
    assert changed(run(net, x, gen)[gen], run(net, z, gen)[gen]) > 1e-3


def test_decoupled_blocks_separate_the_branches() -> None:
    """A network of decoupled blocks only (dual_tower_layers=-1): text outputs are independent of
    gen inputs and gen outputs independent of text inputs (modeling_llada.py:1084-1254)."""
    net = scrambled(cfg_with(2, -1), seed=10)
    assert not any(b.joint for b in net.model.transformer.blocks)
    x, gen = sequence(MIXED)
    base = run(net, x, gen)
    y = x.clone()
    y[gen] = torch.cat([torch.randn(int(gen.sum()), TINY.d_model_gen), torch.zeros(int(gen.sum()), 32)], 1)
    other = run(net, y, gen)
    torch.testing.assert_close(other[~gen], base[~gen], atol=1e-6, rtol=0)
    assert changed(other[gen], base[gen]) > 1e-3
    z = x.clone()
    z[~gen] = torch.randn(int((~gen).sum()), TINY.d_model)
    other = run(net, z, gen)
    torch.testing.assert_close(other[gen], base[gen], atol=1e-6, rtol=0)
    assert changed(other[~gen], base[~gen]) > 1e-3


@pytest.mark.parametrize("dual, joint", [(1, [True, True, False, False]), (0, [True, False, False, False]),
                                         (16, [True] * 4)])
def test_joint_flags_follow_the_release_comparison(dual: int, joint: list[bool]) -> None:
    with torch.device("meta"):
        net = LavidaNetwork(cfg_with(4, dual))
    assert [b.joint for b in net.model.transformer.blocks] == joint


def test_sdpa_equals_eager() -> None:
    """Same weights, attn_implementation "sdpa" vs "eager": full pass with padding and a cached pass."""
    sdpa = scrambled(TINY, seed=11)
    eager = LavidaNetwork(TINY, attn_implementation="eager").eval()
    eager.load_state_dict(sdpa.state_dict())
    assert (sdpa.attn_implementation, eager.attn_implementation) == ("sdpa", "eager")
    x, gen = sequence(MIXED)
    x2, gen2 = sequence(MIXED[::-1], seed=2)
    xb, gb = torch.cat([x, x2]), torch.cat([gen, gen2])
    valid = torch.ones_like(gb)
    valid[1, -3:] = False
    gb[1, -3:] = False
    full = {}
    cached = {}
    for name, net in (("sdpa", sdpa), ("eager", eager)):
        full[name] = run(net, xb, gb, valid=valid)[valid]
        _, cache = net(x[:, :5], use_cache=True)
        cached[name] = run(net, x[:, 5:], gen[:, 5:], cache=cache)
    torch.testing.assert_close(full["sdpa"], full["eager"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cached["sdpa"], cached["eager"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_row_equals_row_alone(side: str) -> None:
    net = scrambled(TINY, seed=12)
    xa, ga = sequence(MIXED, seed=1)
    short = [False, True, True, False, True, True, False, False]
    xb, gb = sequence(short, seed=2)
    pad = len(MIXED) - len(short)
    zx, zg = torch.zeros(1, pad, TINY.d_model), torch.zeros(1, pad, dtype=torch.bool)
    parts = [(xb, zx), (gb, zg), (torch.ones_like(gb), zg)]
    if side == "left":
        parts = [p[::-1] for p in parts]
    xbp, gbp, vbp = (torch.cat(p, dim=1) for p in parts)
    out = run(net, torch.cat([xa, xbp]), torch.cat([ga, gbp]), valid=torch.cat([torch.ones_like(ga), vbp]))
    torch.testing.assert_close(out[0], run(net, xa, ga)[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1][vbp[0]], run(net, xb, gb)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_padding_in_a_row_without_text(impl: str) -> None:
    """Row B is 4 gen rows + 4 padding positions: in decoupled blocks its padded (text-routed)
    queries have no valid key at all. Its valid rows must still equal the row run alone."""
    net = scrambled(TINY, seed=17)
    net.attn_implementation = impl
    xa, ga = sequence([False] * 3 + [True] * 5, seed=1)
    xb, gb = sequence([True] * 4, seed=2)
    x = torch.cat([xa, torch.cat([xb, torch.zeros(1, 4, TINY.d_model)], 1)])
    gen = torch.cat([ga, torch.cat([gb, torch.zeros(1, 4, dtype=torch.bool)], 1)])
    valid = torch.tensor([[True] * 8, [True] * 4 + [False] * 4])
    out = run(net, x, gen, valid=valid)
    torch.testing.assert_close(out[1, :4], run(net, xb, gb)[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[0], run(net, xa, ga)[0], atol=1e-5, rtol=1e-5)


# --- cached prefix (prefix-LM semantics, generate.py "prefix_lm") ---------------------------------
def prefix_lm_reference(net: LavidaNetwork, x: Tensor, gen: list[bool], n_prompt: int) -> Tensor:
    """Full recompute over [prompt; answer] where prompt rows may not attend answer rows (the
    cache was computed from the prompt alone) - the semantics a prefix cache must reproduce."""
    n = len(gen)
    block = torch.zeros(n, n, dtype=torch.bool)
    block[:n_prompt, n_prompt:] = True
    return ref.stack(net.state_dict(), x, gen, net.config, extra_block=block)


def test_cached_prefix_equals_prefix_lm_recompute() -> None:
    net = scrambled(TINY, seed=13)
    route = [False] * 6 + MIXED  # text prompt, then an answer with text and gen rows
    x, gen = sequence(route)
    prompt_states, cache = net(x[:, :6], use_cache=True)
    assert cache is not None and cache.length == 6 and int(cache.next_position[0]) == 6
    answer = run(net, x[:, 6:], gen[:, 6:], cache=cache)
    want = prefix_lm_reference(net, x[0], route, 6)
    torch.testing.assert_close(answer[0].double(), want[6:], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(prompt_states[0].double(), want[:6], atol=ATOL, rtol=RTOL)
    # The reference is discriminating: letting the prompt see the answer changes the answer rows.
    assert changed(ref.stack(net.state_dict(), x[0], route, TINY)[6:], want[6:]) > 1e-3


def test_cached_prefix_with_gen_rows_equals_prefix_lm_recompute() -> None:
    net = scrambled(TINY, seed=5)
    route = [False, False, True, True, True, True, False] + [False] * 4
    x, gen = sequence(route)
    _, cache = net(x[:, :7], gen_mask=gen[:, :7], use_cache=True)
    answer = run(net, x[:, 7:], None, cache=cache)
    torch.testing.assert_close(answer[0].double(), prefix_lm_reference(net, x[0], route, 7)[7:],
                               atol=ATOL, rtol=RTOL)


def test_cache_can_be_extended() -> None:
    """forward(a, use_cache) -> forward(b, cache, use_cache) -> forward(c, cache) equals one
    cache over [a; b] (text only, so no routing subtleties)."""
    net = scrambled(TINY, seed=14)
    x, _ = sequence([False] * 12)
    _, c1 = net(x[:, :4], use_cache=True)
    _, c2 = net(x[:, 4:8], cache=c1, use_cache=True)
    _, c12 = net(x[:, :8], use_cache=True)
    assert c2.length == 8 and int(c2.next_position[0]) == 8
    a, b = run(net, x[:, 8:], None, cache=c2), run(net, x[:, 8:], None, cache=c12)
    # c2's first 4 rows never saw rows 4..7; c12's did. Both must match their own reference.
    block2 = torch.zeros(12, 12, dtype=torch.bool)
    block2[:4, 4:] = True
    block2[:8, 8:] = True
    want2 = ref.stack(net.state_dict(), x[0], [False] * 12, TINY, extra_block=block2)
    torch.testing.assert_close(a[0].double(), want2[8:], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(b[0].double(), prefix_lm_reference(net, x[0], [False] * 12, 8)[8:],
                               atol=ATOL, rtol=RTOL)


def test_batched_cache_with_padded_prompts_equals_single_rows() -> None:
    net = scrambled(TINY, seed=15)
    xa, _ = sequence([False] * 7, seed=1)
    xb, _ = sequence([False] * 4, seed=2)
    ans, gans = sequence([False, True, True, True, True, False], seed=3)
    prompts = torch.cat([xa, torch.cat([xb, torch.zeros(1, 3, TINY.d_model)], 1)])
    valid = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    _, cache = net(prompts, valid=valid, use_cache=True)
    assert cache.next_position.tolist() == [7, 4]
    both = run(net, ans.expand(2, -1, -1), gans.expand(2, -1), cache=cache)
    for row, prompt in enumerate((xa, xb)):
        _, single = net(prompt, use_cache=True)
        torch.testing.assert_close(both[row], run(net, ans, gans, cache=single)[0], atol=1e-5, rtol=1e-5)


# --- image-token path (llava_arch.py:235-265) ----------------------------------------------------
@pytest.mark.parametrize("side", [8, 16])
def test_embed_codes_and_code_logits(side: int) -> None:
    net = scrambled(TINY, seed=16)
    sd = net.state_dict()
    codes = torch.randint(0, TINY.codebook_size, (2, side * side), generator=torch.Generator().manual_seed(side))
    codes[0, :3] = TINY.vq_mask_id
    emb = net.embed_codes(codes, side)
    assert emb.shape == (2, side * side // 4, TINY.d_model)
    assert torch.equal(emb[..., TINY.d_model_gen:], torch.zeros(2, side * side // 4, TINY.d_model - TINY.d_model_gen))
    for i in range(2):
        torch.testing.assert_close(emb[i].double(), ref.embed_codes(sd, codes[i], side, TINY), atol=ATOL, rtol=RTOL)
    hidden = torch.randn(2, side * side // 4, TINY.d_model)
    logits = net.code_logits(hidden, side)
    assert logits.shape == (2, side * side, TINY.codebook_size)
    for i in range(2):
        torch.testing.assert_close(logits[i].double(), ref.code_logits(sd, hidden[i], side, TINY), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("side", [8, 16])
def test_code_logits_at_positions_are_the_full_logits_picked(side: int) -> None:
    """`at` keeps only the picked codes' logits (one row's logits at a time): the very same
    numbers as computing every row's logits and then picking, bit for bit."""
    net = scrambled(TINY, seed=17)
    hidden = torch.randn(3, side * side // 4, TINY.d_model, generator=torch.Generator().manual_seed(side))
    at = torch.randint(0, side * side, (3, 5), generator=torch.Generator().manual_seed(side + 1))
    full = net.code_logits(hidden, side)
    picked = net.code_logits(hidden, side, at)
    assert picked.shape == (3, 5, TINY.codebook_size)
    assert torch.equal(picked, full.gather(1, at[..., None].expand(-1, -1, TINY.codebook_size)))


def test_embed_codes_odd_side_is_an_error() -> None:
    net = scrambled(TINY)
    with pytest.raises(ValueError, match="even"):
        net.embed_codes(torch.zeros(1, 49, dtype=torch.long), 7)


def test_no_downsample_keeps_one_position_per_code() -> None:
    net = scrambled(dataclasses.replace(TINY, downsample=False))
    assert not hasattr(net.model, "downsample_gen")
    assert net.embed_codes(torch.zeros(1, 49, dtype=torch.long), 7).shape == (1, 49, TINY.d_model)
    assert net.code_logits(torch.randn(1, 49, TINY.d_model), 7).shape == (1, 49, TINY.codebook_size)


# --- one mixed forward (its latency is measured by the speed suite, `lavida-bench speed`) -------
def test_tiny_mixed_forward_shapes(tiny_parts) -> None:
    from lavida_bench.model import vision
    from PIL import Image

    net = tiny_parts[0]
    cfg = net.config
    image = Image.new("RGB", (150, 100), (200, 30, 30))
    ids = torch.arange(40)[None]
    codes = torch.full((1, 256), cfg.vq_mask_id)

    tiles = vision.anyres_tiles(image, cfg.image_grid_pinpoints, cfg.vision.image_size)
    feats = vision.merge_features(net.encode_tiles(tiles.pixels), tiles, net.model.image_newline)
    gen_rows = net.embed_codes(codes, 16)
    x = torch.cat([net.embed_text(ids), feats[None], net.embed_text(ids[:, :8]), gen_rows], dim=1)
    gen = torch.zeros(x.shape[:2], dtype=torch.bool)
    gen[:, -gen_rows.shape[1]:] = True
    hidden, _ = net(x, gen_mask=gen)
    text, image_logits = net.text_logits(hidden[~gen]), net.code_logits(hidden[:, -gen_rows.shape[1]:], 16)
    assert text.shape[-1] == cfg.vocab_size and image_logits.shape == (1, 256, cfg.codebook_size)
