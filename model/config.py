"""Typed Lavida-O configuration, read from the release's `config.json`.

The release stores a LLaDA-style config (`model_type: "llada"`, `architectures:
["LlavaLladaForMaskedDiffusion"]`, an `auto_map` to remote code we never run) with the generation
branch and LLaVA vision settings mixed in (printed in LaVida-O `Demo.ipynb` cell 3; read by
`llava/model/builder.py:194-196` and `llava/model/language_model/llava_llada.py:104-110`). `LavidaConfig.from_json`
maps the fields we need onto named attributes, knowingly ignores the training-only ones, and
reports anything else as unknown instead of silently dropping it. `official()` and `tiny()` go
through the same constructor as a file on disk, so the tiny test model exercises the real path.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

# Field of config.json -> attribute of LavidaConfig (the released config, LaVida-O `Demo.ipynb` cell 3).
FIELD_MAP = {
    "d_model": "d_model", "n_heads": "n_heads", "n_kv_heads": "n_kv_heads", "n_layers": "n_layers",
    "mlp_hidden_size": "mlp_hidden_size", "embedding_size": "vocab_size", "rms_norm_eps": "rms_norm_eps",
    "rope_theta": "rope_theta", "d_model_gen": "d_model_gen", "mlp_hidden_size_gen": "mlp_hidden_size_gen",
    "dual_tower_layers": "dual_tower_layers", "downsample": "downsample", "mm_hidden_size": "mm_hidden_size",
    "image_grid_pinpoints": "image_grid_pinpoints", "mm_spatial_pool_stride": "pool_stride",
    "tokenizer_model_max_length": "max_length", "mm_vision_tower": "vision_tower",
    "mm_vqvae": "vqvae", "vision_config": "vision",
}
# Fields whose values we check rather than consume: the implementation supports exactly these.
REQUIRED_VALUES = {
    "activation_type": "silu", "block_type": "llama", "layer_norm_type": "rms", "include_bias": False,
    "alibi": False, "rope": True, "weight_tying": False, "attention_layer_norm": False,
    "mm_projector_type": "mlp2x_gelu", "mm_resampler_type": "spatial_pool", "mm_spatial_pool_mode": "conv",
    "mm_patch_merge_type": "spatial_unpad", "image_aspect_ratio": "anyres", "gen_mlp_type": "dit2",
    "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch", "dual_tower": True,
    "enc_use_image_branch": True, "mm_newline_position": "grid",
}
# Fields the release carries that inference does not need (training, HF bookkeeping, dead paths).
IGNORED = {
    "_name_or_path", "architectures", "auto_map", "model_type", "transformers_version", "torch_dtype",
    "use_cache", "precision", "init_fn", "init_std", "init_device", "init_cutoff_factor", "flash_attention",
    "block_group_size", "mlp_ratio", "max_sequence_length", "vocab_size", "mask_token_id", "eos_token_id",
    "pad_token_id", "bos_token_id", "tie_word_embeddings", "attention_dropout", "residual_dropout",
    "embedding_dropout", "input_emb_norm", "scale_logits", "layer_norm_with_affine", "bias_for_layer_norm",
    "include_qkv_bias", "rope_full_precision", "effective_n_kv_heads", "multi_query_attention",
    "clip_qkv", "attention_type", "mm_use_im_patch_token", "mm_use_im_start_end", "mm_tunable_parts",
    "mm_vision_tower_lr", "mm_spatial_pool_out_channels", "prompt_drop_rate", "image_enc_drop_rate",
    "tokenizer_padding_side", "use_pos_skipping", "add_faster_video", "pos_skipping_range",
    "use_mm_proj", "image_crop_resolution", "image_split_resolution", "vision_tower_pretrained",
    "mm_newline_position_", "faster_token_stride", "rms_norm_eps_gen", "layer_norm_eps", "weight_decay",
    "rope_scaling", "hidden_size", "num_attention_heads", "num_hidden_layers", "rms_norm_eps_", "d_model_",
    "mm_mask_drop_mode", "mm_mask_drop_skip_percentage", "mm_mask_drop_ratio", "mm_mask_drop_ratio_upper",
    "mm_mask_drop_ratio_lower", "mm_perceiver_depth", "mm_perceiver_latents", "mm_perceiver_ff_mult",
    "mm_perceiver_pretrained", "mm_qformer_depth", "mm_qformer_latents", "mm_qformer_pretrained",
    "mm_spatial_pool_ratio", "vocab_size_", "attention_bias", "mm_vision_tower_", "num_gen_image_tokens",
}
SO400M = "google/siglip-so400m-patch14-384"


@dataclass
class VisionConfig:
    """SigLIP encoder geometry. The release names only the hub id; these are so400m's values with
    the last layer removed (LaVida-O `llava/model/multimodal_encoder/siglip_encoder.py:575-601`)."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_layers: int = 26
    num_heads: int = 16
    patch_size: int = 14
    image_size: int = 384
    layer_norm_eps: float = 1e-6


@dataclass
class LavidaConfig:
    d_model: int = 4096
    n_heads: int = 32
    n_kv_heads: int = 32
    n_layers: int = 32
    mlp_hidden_size: int = 12288
    vocab_size: int = 127378
    rms_norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    d_model_gen: int = 2048
    mlp_hidden_size_gen: int = 8192
    # The release's `dual_tower_layers`: blocks with layer_id <= this value use joint attention over
    # the whole sequence; later blocks attend within each branch (modeling_llada.py:1010-1012).
    dual_tower_layers: int = 16
    downsample: bool = True
    codebook_size: int = 8192  # VQ codes the gen head predicts; embedding table has +256 rows
    gen_norm_eps: float = 1e-6
    mm_hidden_size: int = 1152
    pool_stride: int = 2
    image_grid_pinpoints: list[list[int]] = field(
        default_factory=lambda: [[384, 768], [768, 384], [768, 768], [1152, 384], [384, 1152]])
    max_length: int = 8192
    vision_tower: str = SO400M
    vqvae: str | None = None
    vision: VisionConfig = field(default_factory=VisionConfig)
    unknown_fields: list[str] = field(default_factory=list)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def joint_layers(self) -> int:
        """Number of leading blocks with joint attention (17 in the release)."""
        return min(self.dual_tower_layers + 1, self.n_layers)

    @property
    def gen_vocab_rows(self) -> int:
        return self.codebook_size + 256

    @property
    def vq_mask_id(self) -> int:
        return self.codebook_size + 1  # 8193 in the release (predict_t2i_edit.py:192-193)

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "LavidaConfig":
        kind = (raw.get("model_type"), tuple(raw.get("architectures") or ()))
        if kind[0] not in ("llada", "llava_llada") and "LlavaLladaForMaskedDiffusion" not in kind[1]:
            raise ValueError(f"{source}: not a Lavida-O config (model_type={kind[0]!r}, architectures="
                             f"{list(kind[1])}); expected model_type 'llada' with LlavaLladaForMaskedDiffusion")
        problems = [f"{source}: {key} is {raw[key]!r}, this implementation supports only {want!r}"
                    for key, want in REQUIRED_VALUES.items() if key in raw and raw[key] != want]
        if raw.get("n_kv_heads", raw.get("n_heads")) != raw.get("n_heads"):
            problems.append(f"{source}: grouped-query attention (n_kv_heads != n_heads) is not supported")
        if problems:
            raise ValueError("; ".join(problems))
        kwargs: dict[str, Any] = {}
        for key, attr in FIELD_MAP.items():
            if key in raw and raw[key] is not None:
                kwargs[attr] = raw[key]
        if "vision" in kwargs:
            kwargs["vision"] = VisionConfig(**kwargs["vision"])
        elif kwargs.get("vision_tower", SO400M) != SO400M:
            raise ValueError(f"{source}: vision tower {kwargs['vision_tower']!r} needs a 'vision_config' entry "
                             f"(only {SO400M} geometry is built in)")
        # The release defaults the gen widths to the und widths when absent (llava_llada.py:104-110).
        kwargs.setdefault("d_model_gen", kwargs.get("d_model", cls.d_model))
        kwargs.setdefault("mlp_hidden_size_gen", kwargs.get("mlp_hidden_size", cls.mlp_hidden_size))
        if "downsample" not in raw:
            kwargs["downsample"] = False
        unknown = sorted(set(raw) - set(FIELD_MAP) - set(REQUIRED_VALUES) - IGNORED)
        if unknown:
            warnings.warn(f"{source}: ignoring unknown config fields {unknown}", stacklevel=2)
        return cls(**kwargs, unknown_fields=unknown)

    @classmethod
    def from_json(cls, path: str | Path) -> "LavidaConfig":
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: cannot read the model config ({err})") from err
        return cls.from_dict(raw, source=str(path))

    def to_release_dict(self) -> dict[str, Any]:
        """The config.json this model is saved with: the release's field names and quirks."""
        raw: dict[str, Any] = {key: getattr(self, attr) for key, attr in FIELD_MAP.items() if attr != "vision"}
        raw.update(REQUIRED_VALUES)
        raw.update({"model_type": "llada", "architectures": ["LlavaLladaForMaskedDiffusion"],
                    "vocab_size": self.vocab_size, "n_kv_heads": self.n_heads, "torch_dtype": "bfloat16"})
        if self.vision_tower != SO400M or self.vision != VisionConfig():
            raw["vision_config"] = asdict(self.vision)
        return raw

    @classmethod
    def official(cls) -> "LavidaConfig":
        """The released checkpoint's config (printed in LaVida-O `Demo.ipynb` cell 3)."""
        return cls.from_dict({**REQUIRED_VALUES, "model_type": "llada", "d_model": 4096, "n_heads": 32, "n_kv_heads": 32,
                              "n_layers": 32, "mlp_hidden_size": 12288, "embedding_size": 127378,
                              "d_model_gen": 2048, "mlp_hidden_size_gen": 8192, "dual_tower_layers": 16,
                              "downsample": True, "mm_vqvae": "jacklishufan/LaViDa-O-v1.0"}, "official")

    @classmethod
    def tiny(cls, vocab_size: int = 1536) -> "LavidaConfig":
        """A few-MB model with every structural feature of the release (both branches, joint and
        decoupled layers, anyres tiles, down/up-sampling), for tests and the demo."""
        return cls.from_dict({
            **REQUIRED_VALUES, "model_type": "llada", "d_model": 64, "n_heads": 4, "n_kv_heads": 4, "n_layers": 4,
            "mlp_hidden_size": 128, "embedding_size": vocab_size, "d_model_gen": 32,
            "mlp_hidden_size_gen": 64, "dual_tower_layers": 1, "downsample": True, "mm_hidden_size": 32,
            "image_grid_pinpoints": [[56, 112], [112, 56], [112, 112], [168, 56], [56, 168]],
            "mm_vision_tower": "tiny-siglip", "mm_vqvae": None,
            "vision_config": asdict(VisionConfig(hidden_size=32, intermediate_size=64, num_layers=2,
                                                 num_heads=2, patch_size=14, image_size=56)),
        }, "tiny")

    def summary(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("vision", "unknown_fields")}
        out["vision"] = asdict(self.vision)
        out["joint_layers"] = self.joint_layers
        if self.unknown_fields:
            out["unknown_fields"] = self.unknown_fields
        return out
