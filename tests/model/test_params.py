"""Parameter accounting at the official size, on the meta device (issue 3, Acceptance 1).

Expected values are computed by hand from the release's shapes (the config printed in LaVida-O `Demo.ipynb` cell 3):
  und block  = 4*4096^2 (q,k,v,attn_out) + 3*4096*12288 (gate, up, down) + 2*4096 (norms) = 218,112,000
  gen block  = 3*2048*4096 (q,k,v _vision) + 3*2048*8192 (MLP _vision) + 2*2048 (norms) = 75,501,568
  wte = ff_out = 127378*4096 = 521,740,288; ln_f = 4096
  gen I/O    = 21,497,856 + 4,196,352 + 20,973,568 + 4,196,352 + 2 * 16,779,264 = 84,422,656
  vision     = SigLIP(26 layers) 397,747,744 + resampler 5,309,568 + projector 21,504,000 + newline 4096
"""
from __future__ import annotations

import pytest
from lavida_bench.model.config import LavidaConfig
from lavida_bench.model.params import ParamCounts, count_parameters

# arXiv 2509.19244 figures, in billions.
PAPER = {"understanding": 8.0, "generation": 2.4, "text_to_image": 6.4, "interleaved": 10.4}

UND_BLOCK = 4 * 4096**2 + 3 * 4096 * 12288 + 2 * 4096
GEN_BLOCK = 3 * 2048 * 4096 + 3 * 2048 * 8192 + 2 * 2048
WTE = 127378 * 4096
GEN_IO = ((8192 + 256) * 2048 + 2048 + 2048 * 2048) + (2048 + 2048 * 2048) \
    + (2048 * 2048 + 2048 + 2048 * 8192) + (2048 + 2048 * 2048) + 2 * (2048 + 2048 * 2048 * 4)
SIGLIP_LAYER = 4 * (1152 * 1152 + 1152) + 2 * 2 * 1152 + (1152 * 4304 + 4304) + (4304 * 1152 + 1152)
SIGLIP = 26 * SIGLIP_LAYER + (1152 * 3 * 14 * 14 + 1152) + 729 * 1152 + 2 * 1152
VISION = SIGLIP + (1152 * 1152 * 4 + 1152) + (1152 * 4096 + 4096) + (4096 * 4096 + 4096) + 4096


@pytest.fixture(scope="module")
def official() -> ParamCounts:
    return count_parameters(LavidaConfig.official())


def test_hand_constants() -> None:
    """The hand arithmetic above equals the totals computed from the released config."""
    assert (UND_BLOCK, GEN_BLOCK, WTE, GEN_IO) == (218_112_000, 75_501_568, 521_740_288, 84_422_656)
    assert SIGLIP == 397_747_744 and VISION == 424_565_408


def test_per_branch_counts_exact(official: ParamCounts) -> None:
    assert official.und_blocks == [UND_BLOCK] * 32
    assert official.gen_blocks == [GEN_BLOCK] * 32
    assert official.embedding == WTE
    assert official.head == WTE + 4096
    assert official.gen_io == GEN_IO
    assert official.vision == VISION
    assert official.joint_layers == 17  # layer_id <= dual_tower_layers=16 (modeling_llada.py:1010-1012)
    assert official.understanding == 32 * UND_BLOCK + 2 * WTE + 4096 == 8_023_068_672
    assert official.generation == 32 * GEN_BLOCK == 2_416_050_176
    # What the released code needs for T2I: und blocks 0..16, wte, gen blocks + I/O.
    assert official.text_to_image() == 17 * UND_BLOCK + WTE + 32 * GEN_BLOCK + GEN_IO
    assert official.text_to_image_paper() == 16 * UND_BLOCK + WTE + 32 * GEN_BLOCK
    assert official.interleaved == official.understanding + official.generation + GEN_IO
    assert official.total == official.interleaved + VISION


def test_paper_figures_within_3_percent(official: ParamCounts) -> None:
    got = {"understanding": official.understanding, "generation": official.generation,
           "text_to_image": official.text_to_image_paper(), "interleaved": official.interleaved}
    print("\nLavida-O parameters at the official config (meta device):")
    print(f"{'part':<16}{'counted':>16}{'paper':>10}{'diff':>9}")
    for name, value in got.items():
        print(f"{name:<16}{value:>16,}{PAPER[name]:>9.1f}B{value / (PAPER[name] * 1e9) - 1:>+9.2%}")
    for name, table_value in official.table().items():
        print(f"  table[{name}] = {table_value:,}")
    for name, value in got.items():
        assert abs(value / (PAPER[name] * 1e9) - 1) <= 0.03, (name, value)


def test_table_keys(official: ParamCounts) -> None:
    table = official.table()
    assert table["text_to_image"] == official.text_to_image()
    assert table["text_to_image_paper_accounting"] == official.text_to_image_paper()
    assert table["total"] == official.total


def test_tiny_counts_match_the_real_module() -> None:
    """On the tiny config the meta-device counts equal a materialised network's numel sums."""
    from lavida_bench.model.network import LavidaNetwork

    cfg = LavidaConfig.tiny()
    counts = count_parameters(cfg)
    net = LavidaNetwork(cfg)
    everything = sum(p.numel() for p in net.parameters())
    assert counts.total == everything
    d, dg, m, mg, v = cfg.d_model, cfg.d_model_gen, cfg.mlp_hidden_size, cfg.mlp_hidden_size_gen, cfg.vocab_size
    assert counts.und_blocks == [4 * d * d + 3 * d * m + 2 * d] * cfg.n_layers
    assert counts.gen_blocks == [3 * dg * d + 3 * dg * mg + 2 * dg] * cfg.n_layers
    assert counts.understanding == cfg.n_layers * (4 * d * d + 3 * d * m + 2 * d) + 2 * v * d + d
