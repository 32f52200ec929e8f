"""The official-size network's state_dict, built on the meta device, has exactly the release's keys
and shapes (LaVida-O `modeling_llada.py:971-1040, 1381-1415`, `llava/model/llava_arch.py:70-185`) - the
precondition for loading the released safetensors with zero missing/unexpected keys. The expected table
is written out by hand from those modules, not read from our code."""
from __future__ import annotations

import pytest
import torch
from lavida_bench.model.config import LavidaConfig
from lavida_bench.model.network import LavidaNetwork

D, DG, M, MG, V, L = 4096, 2048, 12288, 8192, 127378, 32  # Demo.ipynb cell 3 config
SIG, SIG_MLP, SIG_LAYERS = 1152, 4304, 26  # so400m with the last layer removed (siglip_encoder.py:582)


def release_keys() -> dict[str, tuple[int, ...]]:
    keys: dict[str, tuple[int, ...]] = {
        "model.transformer.wte.weight": (V, D), "model.transformer.ln_f.weight": (D,),
        "model.transformer.ff_out.weight": (V, D),
    }
    for n in range(L):
        b = f"model.transformer.blocks.{n}."
        keys.update({b + "attn_norm.weight": (D,), b + "attn_out.weight": (D, D), b + "ff_norm.weight": (D,),
                     b + "ff_proj.weight": (M, D), b + "up_proj.weight": (M, D), b + "ff_out.weight": (D, M),
                     b + "attn_norm_vision.weight": (DG,), b + "ff_norm_vision.weight": (DG,),
                     b + "ff_proj_vision.weight": (MG, DG), b + "up_proj_vision.weight": (MG, DG),
                     b + "ff_out_vision.weight": (DG, MG)})
        keys.update({b + f"{p}_proj.weight": (D, D) for p in "qkv"})
        keys.update({b + f"{p}_proj_vision.weight": (D, DG) for p in "qkv"})
    keys.update({
        "model.gen_embedding.0.weight": (8192 + 256, DG), "model.gen_embedding.1.weight": (DG,),
        "model.gen_embedding.2.weight": (DG, DG), "model.gen_embedding_2.0.weight": (DG,),
        "model.gen_embedding_2.1.weight": (DG, DG), "model.gen_predictor.0.weight": (DG, DG),
        "model.gen_predictor.1.weight": (DG,), "model.gen_predictor.2.weight": (8192, DG),
        "model.gen_predictor_2.0.weight": (DG,), "model.gen_predictor_2.1.weight": (DG, DG),
        "model.downsample_gen.downsample.norm.weight": (DG,),
        "model.downsample_gen.downsample.conv.weight": (DG, DG, 2, 2),
        "model.upsample_gen.upsample.norm.weight": (DG,),
        "model.upsample_gen.upsample.conv.weight": (DG, DG, 2, 2),
        "model.vision_resampler.pool.weight": (SIG, SIG, 2, 2), "model.vision_resampler.pool.bias": (SIG,),
        "model.mm_projector.0.weight": (D, SIG), "model.mm_projector.0.bias": (D,),
        "model.mm_projector.2.weight": (D, D), "model.mm_projector.2.bias": (D,),
        "model.image_newline": (D,),
    })
    v = "model.vision_tower.vision_tower.vision_model."
    keys.update({v + "embeddings.patch_embedding.weight": (SIG, 3, 14, 14), v + "embeddings.patch_embedding.bias": (SIG,),
                 v + "embeddings.position_embedding.weight": (729, SIG),
                 v + "post_layernorm.weight": (SIG,), v + "post_layernorm.bias": (SIG,)})
    for n in range(SIG_LAYERS):
        layer = v + f"encoder.layers.{n}."
        for p in "qkv":
            keys.update({layer + f"self_attn.{p}_proj.weight": (SIG, SIG), layer + f"self_attn.{p}_proj.bias": (SIG,)})
        keys.update({layer + "self_attn.out_proj.weight": (SIG, SIG), layer + "self_attn.out_proj.bias": (SIG,),
                     layer + "layer_norm1.weight": (SIG,), layer + "layer_norm1.bias": (SIG,),
                     layer + "layer_norm2.weight": (SIG,), layer + "layer_norm2.bias": (SIG,),
                     layer + "mlp.fc1.weight": (SIG_MLP, SIG), layer + "mlp.fc1.bias": (SIG_MLP,),
                     layer + "mlp.fc2.weight": (SIG, SIG_MLP), layer + "mlp.fc2.bias": (SIG,)})
    return keys


@pytest.fixture(scope="module")
def official_state() -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        net = LavidaNetwork(LavidaConfig.official())
    return {k: tuple(t.shape) for k, t in net.state_dict().items()}


def test_official_keys_exactly_the_release_set(official_state) -> None:
    want = release_keys()
    assert sorted(set(want) - set(official_state)) == []  # nothing the release has is missing
    assert sorted(set(official_state) - set(want)) == []  # nothing extra (no attn_out_vision, no biases, no head)
    wrong = {k: (official_state[k], shape) for k, shape in want.items() if official_state[k] != shape}
    assert wrong == {}


def test_official_state_dict_size(official_state) -> None:
    """Block keys: 17 per block (9 und + 8 gen) x 32; 3 LM keys; 14 gen I/O; 2 resampler + 4 projector
    + newline; SigLIP 5 + 16 per layer x 26."""
    assert sum(k.startswith("model.transformer.blocks.") for k in official_state) == 17 * 32
    assert sum(k.startswith("model.vision_tower.") for k in official_state) == 5 + 16 * 26
    assert len(official_state) == 17 * 32 + 3 + 14 + 7 + 5 + 16 * 26
