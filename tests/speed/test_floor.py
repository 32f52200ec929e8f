"""Floor arithmetic against hand-computed cases on the tiny config.

Tiny config (LavidaConfig.tiny): d=64, MLP m=128, d_gen=32, m_gen=64, 4 blocks, dual_tower_layers=1
-> 2 joint blocks + 2 decoupled. Per block and row:
  text row: 4*64^2 + 3*64*128 = 16384 + 24576 = 40960 weights
  gen row:  3*32*64 (q/k/v) + 64^2 (shared attn_out) + 3*32*64 (MLP) = 6144 + 4096 + 6144 = 16384
"""
from __future__ import annotations

import pytest
from lavida_bench.model.config import LavidaConfig

from lavida_bench.speed.floor import (
    Pass,
    RowShape,
    gen_row_weights,
    pass_cost,
    und_row_weights,
    without_prompt_recompute,
    workload_floor,
)
from lavida_bench.timing import DeviceRates

CFG = LavidaConfig.tiny(vocab_size=1536)
BF16 = 2


def test_per_row_weights() -> None:
    assert CFG.joint_layers == 2
    assert und_row_weights(CFG) == 40960
    assert gen_row_weights(CFG) == 16384


def test_joint_pass_flops_and_bytes() -> None:
    cost = pass_cost(CFG, Pass("forward", [RowShape(text=10, gen=4)]), BF16)
    # linear: 2 * (10 rows * 4 blocks * 40960 + 4 rows * 4 blocks * 16384) = 2 * (1638400 + 262144)
    # attention 4*d per pair: joint 14*14=196 pairs x 2 blocks; split text 10*10, gen 4*4, x 2 blocks each
    #   256 * (392 + 200 + 32) = 159744
    assert cost.flops == 3801088 + 159744
    # weights read once: 4 und blocks (40960, attn_out included) + 4 gen blocks without the shared
    # attn_out (16384 - 4096) = 163840 + 49152 = 212992 weights, 2 bytes each
    assert cost.bytes == 425984


def test_image_only_pass_skips_text_rows_after_joint_blocks() -> None:
    cost = pass_cost(CFG, Pass("forward", [RowShape(text=10, gen=4)], image_only=True), BF16)
    # linear: 2 * (10 * 2 joint blocks * 40960 + 4 * 4 * 16384) = 2 * (819200 + 262144) = 2162688
    # attention: 256 * (2*196 + 0 text split + 2*16) = 108544
    assert cost.flops == 2162688 + 108544
    # weights: 2 und blocks 81920 + gen 4*12288=49152 + attn_out of the 2 gen-only blocks 2*4096
    assert cost.bytes == 2 * (81920 + 49152 + 8192)


def test_cached_text_pass_reads_the_cache() -> None:
    cost = pass_cost(CFG, Pass("forward", [RowShape(text=8, cache=100)]), BF16)
    # linear 2*8*4*40960 = 2621440; attention 8 queries x 108 keys in all 4 blocks: 256 * 3456 = 884736
    assert cost.flops == 2621440 + 884736
    # weights 163840 * 2 + cache 100 keys * (k, v) * 64 * 4 blocks * 2 bytes = 327680 + 102400
    assert cost.bytes == 430080


def test_heads() -> None:
    text = pass_cost(CFG, Pass("text_logits", count=4), BF16)
    assert (text.flops, text.bytes) == (2 * 4 * 64 * 1536, 64 * 1536 * 2)
    codes = pass_cost(CFG, Pass("code_logits", count=16), BF16)
    # per code: gen_predictor_2 32^2 + gen_predictor 32^2 + 32*8192 + one 2x2-conv tap 32^2
    assert codes.flops == 2 * 16 * (3 * 1024 + 32 * 8192)


def test_floor_is_a_roofline_per_pass() -> None:
    passes = [Pass("forward", [RowShape(text=10, gen=4)]), Pass("text_logits", count=4)]
    slow_memory = DeviceRates("x", "bfloat16", matmul_flops=1e9, bandwidth_bytes=1e6)
    # memory-bound: 425984 / 1e6 + 196608 / 1e6
    assert workload_floor(CFG, passes, BF16, slow_memory) == pytest.approx(0.425984 + 0.196608)
    slow_compute = DeviceRates("x", "bfloat16", matmul_flops=1e6, bandwidth_bytes=1e12)
    # compute-bound: 3960832 / 1e6 + 786432 / 1e6
    assert workload_floor(CFG, passes, BF16, slow_compute) == pytest.approx(3.960832 + 0.786432)


def test_prompt_cache_bound_keeps_first_pass_whole() -> None:
    passes = [Pass("embed_codes", count=16), Pass("forward", [RowShape(10, 4)]), Pass("forward", [RowShape(10, 4)])]
    out = without_prompt_recompute(passes)
    assert out[1].rows == [RowShape(10, 4, 0)]
    assert out[2].rows == [RowShape(0, 4, 10)]


def test_official_predictions() -> None:
    from lavida_bench.speed.predict import H100_NOMINAL, official_predictions

    pred = official_predictions(H100_NOMINAL, answer=16, steps=4)["predicted_speedup"]
    assert pred["prefix_cache"] > 1 and pred["image_only"] > 1
    # both CFG layouts are compute-bound at the official size: batching changes no arithmetic
    assert pred["cfg_batching"] == pytest.approx(1.0)
    assert pred["ground1_vs_autoregressive"] > 1 and pred["ground1_vs_qwen2_5_vl_7b"] > 1
    assert 0 < pred["prompt_cache_would_save"] < 1
