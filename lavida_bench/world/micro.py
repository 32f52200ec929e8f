"""The micro Lavida-O of the synthetic world: the release's architecture at a size a CPU trains.

Every structural feature of the release is kept (LaVida-O `llava/model/language_model/llada/modeling_llada.py`,
`llava/model/llava_arch.py`): the LLaDA
understanding branch and the narrower generation branch in one stack, joint attention in the
first blocks and decoupled attention after, a SigLIP tower with the conv resampler and GELU
projector, anyres tiles, the 2x2 down/up-sampling of image codes, the 8192-code VQ head, the
special and LOC tokens and the chat template. What changes is the size, the tile (64 px, patch 8,
so a 64 px world image gives 4x4 features per tile) and the VQ's downsampling (x8, so a 64 px
image is 8x8 codes = 4x4 LLM positions, one per 16 px cell of the world's grid, each cell holding
at most one 12 px object): sized so that the whole training fits in about an hour of one CPU core.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lavida_bench.api import Options
from lavida_bench.model.config import REQUIRED_VALUES, LavidaConfig, VisionConfig
from lavida_bench.model.network import LavidaNetwork

if TYPE_CHECKING:
    from lavida_bench.model.pipeline import LavidaPipeline

WORLD_SIDE = 64  # pixels of the images the micro model sees and draws
CODEBOOK = 8192  # the release's codebook size (the gen head's output width is fixed by it)
# How the micro model draws (the demo preset's variants and every world measure read these):
# - 32 denoising steps for the 8x8 codes (the release uses 64): 46 of 48 images the same as at
#   64, and plain GenEval-world 0.54 against 0.46 at 16, whose last steps reveal 8, 10 and 16
#   codes at once (n = 144; docs/benchmarks.md, "Planned edits shipped, and 32 drawing steps");
# - guidance g as the release applies it, (1+g)*cond - g*uncond, so 0 is none (LaVida-O
#   `llava/eval/predict_t2i_edit.py:421-611`), below the release's: at its demo's 4
#   (`llava/eval/1024_eval.yaml`) this model all but stops drawing objects, and its edits' image
#   guidance of 1.4 (`1024_eval_edit.yaml`) cost it recolours and replacements. Each kind of
#   drawing uses the scale that served it best (docs/benchmarks.md, "Guidance, measured per kind
#   of drawing"): plain text-to-image 1 (2 is no better), after a plan 0.5, edits 1 with no image
#   guidance.
IMAGE_STEPS = 32
PLAIN_CFG = 1.0
PLANNED_CFG = 0.5
EDIT_CFG = 1.0
EDIT_IMAGE_CFG = 0.0
# How it decodes text: the whole sequence at every step (the release's `prefix_lm=False` layout).
# It was trained, like the release's published recipe, without the prefix-LM mask, so its prompt
# rows always saw the answer; against a prompt cache its logits move by up to 10 nats and its plans
# come out as `<LOC_288> I should place ...` (docs/benchmarks.md, "The prefix cache and the micro
# model").
PREFIX_LM = False


def image_options(plan: bool = False, **extra: Any) -> Options:
    """The `Options` of a world text-to-image request (planned or not), plus `extra`."""
    return Options(resolution=WORLD_SIDE, steps=IMAGE_STEPS, cfg=PLANNED_CFG if plan else PLAIN_CFG, plan=plan, **extra)


def edit_options(**extra: Any) -> Options:
    """The `Options` of a world edit request, plus `extra`."""
    return Options(resolution=WORLD_SIDE, steps=IMAGE_STEPS, cfg=EDIT_CFG, image_cfg=EDIT_IMAGE_CFG, **extra)


def micro_pipeline(folder: str | Path) -> LavidaPipeline:
    """The harness's pipeline over a world checkpoint, set up as the micro model is measured."""
    from lavida_bench.model.checkpoint import load_checkpoint
    from lavida_bench.model.pipeline import LavidaPipeline

    return LavidaPipeline(load_checkpoint(folder), resolution=WORLD_SIDE, prefix_lm=PREFIX_LM)


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


EMBEDDING_STD = 0.02  # the release's init_std (config.json), kept for embedding tables
PROJECTIONS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def fan_in(module: nn.Module, weight: torch.Tensor) -> int:
    """Inputs summed into one output of a projection (a transposed conv's weight is [in, out, k, k])."""
    if isinstance(module, nn.ConvTranspose2d):
        return weight.shape[0] * weight.shape[2] * weight.shape[3]
    return weight[0].numel()


@torch.no_grad()
def init_micro_weights(network: LavidaNetwork, seed: int) -> None:
    """Seeded initial weights for training the micro network from scratch (deterministic across
    machines: one CPU generator, parameters in `named_parameters` order).

    A deliberate difference from the release's N(0, init_std = 0.02) everywhere: 0.02 suits
    d_model 4096, and the release starts from a pretrained LLaDA anyway. At d_model 128 and a
    64-wide generation branch it is 2.5-6x below the fan-in scale, and it stalls learning: with
    every cell visible but the object's, a plain transformer with 0.02 projections filled in the
    object a caption names with 31% of its codes right after 4,000 steps, with fan-in scaled ones
    100% from step 3,000 (docs/benchmarks.md, "The initial weights and object masks"). So
    projections (linear and conv weights) get the variance of PyTorch's default `nn.Linear` init,
    1 / (3 fan_in); embedding tables and other free vectors keep 0.02; norm scales start at one
    and biases at zero."""
    gen = torch.Generator().manual_seed(seed)
    owners = dict(network.named_modules())
    for name, p in network.named_parameters():
        owner_name, _, leaf = name.rpartition(".")
        owner = owners[owner_name]
        if leaf == "bias":
            p.zero_()
        elif p.ndim == 1 and leaf == "weight":  # RMSNorm / LayerNorm scales
            p.fill_(1.0)
        elif isinstance(owner, PROJECTIONS) and leaf == "weight":
            p.copy_(torch.randn(p.shape, generator=gen) * (3 * fan_in(owner, p)) ** -0.5)
        else:
            p.copy_(torch.randn(p.shape, generator=gen) * EMBEDDING_STD)


def micro_vq_config() -> dict[str, Any]:
    """A diffusers VQModel with x8 downsampling and the release's 8192 codes."""
    return {"_class_name": "VQModel", "in_channels": 3, "out_channels": 3,
            "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
            "block_out_channels": [16, 32, 32, 32], "layers_per_block": 1, "latent_channels": 8,
            "num_vq_embeddings": CODEBOOK, "norm_num_groups": 4, "vq_embed_dim": 8,
            "lookup_from_codebook": True, "mid_block_add_attention": False, "sample_size": WORLD_SIDE}
