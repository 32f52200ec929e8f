"""The typed model config and its reading of the release's config.json (printed in LaVida-O `Demo.ipynb` cell 3)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from lavida_bench.model.config import LavidaConfig

# The fields Demo cell 3 prints for the released checkpoint (LaVida-O Demo.ipynb), with the release's values.
RELEASE_JSON = {
    "model_type": "llada", "architectures": ["LlavaLladaForMaskedDiffusion"],
    "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM"},
    "d_model": 4096, "n_heads": 32, "n_kv_heads": 32, "effective_n_kv_heads": 32, "n_layers": 32,
    "mlp_hidden_size": 12288, "mlp_ratio": 4, "activation_type": "silu", "block_type": "llama",
    "layer_norm_type": "rms", "layer_norm_with_affine": True, "bias_for_layer_norm": False, "rms_norm_eps": 1e-05,
    "include_bias": False, "include_qkv_bias": False, "rope": True, "rope_theta": 500000.0,
    "rope_full_precision": True, "alibi": False, "attention_layer_norm": False, "input_emb_norm": False,
    "scale_logits": False, "weight_tying": False, "tie_word_embeddings": False, "embedding_size": 127378,
    "vocab_size": 127378, "mask_token_id": 126336, "eos_token_id": 126081, "pad_token_id": 126081,
    "max_sequence_length": 4096, "attention_dropout": 0.0, "residual_dropout": 0.0, "embedding_dropout": 0.0,
    "flash_attention": False, "block_group_size": 1, "init_fn": "mitchell", "precision": "amp_bf16",
    "torch_dtype": "bfloat16", "use_cache": False, "transformers_version": "4.50.3",
    "dual_tower": True, "d_model_gen": 2048, "mlp_hidden_size_gen": 8192, "dual_tower_layers": 16,
    "downsample": True, "gen_mlp_type": "dit2", "enc_use_image_branch": True,
    "mm_vqvae": "jacklishufan/LaViDa-O-v1.0", "prompt_drop_rate": 0.1, "image_enc_drop_rate": 0.5,
    "mm_vision_tower": "google/siglip-so400m-patch14-384", "mm_hidden_size": 1152, "mm_vision_select_layer": -2,
    "mm_vision_select_feature": "patch", "mm_projector_type": "mlp2x_gelu", "mm_resampler_type": "spatial_pool",
    "mm_spatial_pool_mode": "conv", "mm_spatial_pool_stride": 2, "mm_spatial_pool_out_channels": 1152,
    "mm_patch_merge_type": "spatial_unpad", "mm_newline_position": "grid", "image_aspect_ratio": "anyres",
    "image_grid_pinpoints": [[384, 768], [768, 384], [768, 768], [1152, 384], [384, 1152]],
    "tokenizer_model_max_length": 8192, "tokenizer_padding_side": "right", "use_pos_skipping": False,
    "add_faster_video": False, "mm_use_im_patch_token": False, "mm_use_im_start_end": False,
}


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def test_release_config_json_reads_cleanly(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unknown field" warning for any field the release prints
        cfg = LavidaConfig.from_json(write(tmp_path, RELEASE_JSON))
    assert cfg.unknown_fields == []
    official = LavidaConfig.official()
    assert cfg.summary() == official.summary()
    assert (cfg.d_model, cfg.head_dim, cfg.vocab_size, cfg.joint_layers) == (4096, 128, 127378, 17)
    assert (cfg.d_model_gen, cfg.mlp_hidden_size_gen, cfg.gen_vocab_rows, cfg.vq_mask_id) == (2048, 8192, 8448, 8193)


def test_unknown_field_is_reported(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="mystery_field"):
        cfg = LavidaConfig.from_json(write(tmp_path, {**RELEASE_JSON, "mystery_field": 3}))
    assert cfg.unknown_fields == ["mystery_field"]
    assert "unknown_fields" in cfg.summary()


@pytest.mark.parametrize("key, value", [("activation_type", "swiglu"), ("alibi", True), ("dual_tower", False),
                                        ("mm_resampler_type", None)])
def test_unsupported_values_are_errors_naming_the_field(tmp_path: Path, key: str, value) -> None:
    path = write(tmp_path, {**RELEASE_JSON, key: value})
    with pytest.raises(ValueError, match=key) as err:
        LavidaConfig.from_json(path)
    assert str(path) in str(err.value)


def test_grouped_query_attention_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_kv_heads"):
        LavidaConfig.from_json(write(tmp_path, {**RELEASE_JSON, "n_kv_heads": 8}))


def test_release_defaults_when_gen_fields_are_absent() -> None:
    """llava_llada.py:104-110: d_model_gen / mlp_hidden_size_gen default to the und widths,
    downsample to False."""
    raw = {k: v for k, v in RELEASE_JSON.items() if k not in ("d_model_gen", "mlp_hidden_size_gen", "downsample")}
    cfg = LavidaConfig.from_dict(raw)
    assert (cfg.d_model_gen, cfg.mlp_hidden_size_gen, cfg.downsample) == (4096, 12288, False)


def test_unreadable_config_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        LavidaConfig.from_json(path)
    with pytest.raises(ValueError, match="nowhere"):
        LavidaConfig.from_json(tmp_path / "nowhere" / "config.json")


@pytest.mark.parametrize("preset", [LavidaConfig.official, LavidaConfig.tiny])
def test_release_dict_round_trip(preset) -> None:
    cfg = preset()
    raw = cfg.to_release_dict()
    assert raw["model_type"] == "llada" and raw["architectures"] == ["LlavaLladaForMaskedDiffusion"]
    again = LavidaConfig.from_dict(json.loads(json.dumps(raw)))
    assert again.summary() == cfg.summary() and again.unknown_fields == []


def test_tiny_keeps_every_structural_feature() -> None:
    cfg = LavidaConfig.tiny()
    assert 0 < cfg.joint_layers < cfg.n_layers  # both joint and decoupled blocks
    assert cfg.d_model_gen < cfg.d_model and cfg.downsample
    assert len(cfg.image_grid_pinpoints) == 5 and cfg.vision.image_size // cfg.vision.patch_size % 2 == 0
