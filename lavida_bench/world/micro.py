"""The micro Lavida-O of the synthetic world: the release's architecture at a size a CPU trains.

Every structural feature of the release is kept (LaVida-O `llava/model/language_model/llada/modeling_llada.py`,
`llava/model/llava_arch.py`): the LLaDA
understanding branch and the narrower generation branch in one stack, joint attention in the
first blocks and decoupled attention after, a SigLIP tower with the conv resampler and GELU
projector, anyres tiles, the 2x2 down/up-sampling of image codes, the 8192-code VQ head, the
special and LOC tokens and the chat template. What changes is the size, the tile (64 px, patch 8,
so a 64 px world image gives 4x4 features per tile) and the VQ's downsampling (x4, so a 64 px
image is 16x16 codes = 8x8 LLM positions; the world's objects are 14-22 px wide): sized so that
the whole training fits in about 45 minutes of one shared CPU core.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from lavida_bench.model.config import REQUIRED_VALUES, LavidaConfig, VisionConfig

WORLD_SIDE = 64  # pixels of the images the micro model sees and draws
CODEBOOK = 8192  # the release's codebook size (the gen head's output width is fixed by it)
# Denoising steps the micro model draws with (the demo preset's variants; the release uses 64):
# trained at every noise level, it needs no more for 16x16 codes.
IMAGE_STEPS = 16


def micro_config(vocab_size: int) -> LavidaConfig:
    return LavidaConfig.from_dict({
        **REQUIRED_VALUES, "model_type": "llada", "d_model": 128, "n_heads": 4, "n_kv_heads": 4, "n_layers": 4,
        "mlp_hidden_size": 256, "embedding_size": vocab_size, "d_model_gen": 64, "mlp_hidden_size_gen": 128,
        "dual_tower_layers": 1, "downsample": True, "mm_hidden_size": 64,
        "image_grid_pinpoints": [[64, 64], [64, 128], [128, 64], [128, 128]],
        "mm_vision_tower": "micro-siglip", "mm_vqvae": None,
        "vision_config": asdict(VisionConfig(hidden_size=64, intermediate_size=128, num_layers=2,
                                             num_heads=2, patch_size=8, image_size=64)),
    }, "micro-world")


def micro_vq_config() -> dict[str, Any]:
    """A diffusers VQModel with x4 downsampling and the release's 8192 codes."""
    return {"_class_name": "VQModel", "in_channels": 3, "out_channels": 3,
            "down_block_types": ["DownEncoderBlock2D"] * 3, "up_block_types": ["UpDecoderBlock2D"] * 3,
            "block_out_channels": [16, 32, 32], "layers_per_block": 1, "latent_channels": 8,
            "num_vq_embeddings": CODEBOOK, "norm_num_groups": 4, "vq_embed_dim": 8,
            "lookup_from_codebook": True, "mid_block_add_attention": False, "sample_size": WORLD_SIDE}
