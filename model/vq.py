"""The VQ image tokenizer: diffusers `VQModel` from the checkpoint's `vqvae/` folder (LaVida-O `llava/model/llava_arch.py:267-274, 442-485`);
checkpoint.py reads its files (config and safetensors, checked like every checkpoint file).

Images enter in [0, 1] (VaeImageProcessor with do_normalize=False, not [-1, 1]); edit sources are
padded to a square with black, then resized. Codes are flattened row-major. Decoding integer
codes needs `lookup_from_codebook: true` in the VQ config; we set it on load if absent, which
changes nothing else.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor


def vq_from_config(config: dict[str, Any]) -> Any:
    from diffusers import VQModel

    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config["lookup_from_codebook"] = True
    return VQModel.from_config(config)


def square_then_resize(image: Image.Image, resolution: int) -> Image.Image:
    side = max(image.size)
    return ImageOps.pad(image, (side, side), color=(0, 0, 0)).resize((resolution, resolution))


class VQTokenizer:
    """Encode images to code grids and decode code grids to images."""

    def __init__(self, model: Any):
        self.model = model.eval()
        self.scale = 2 ** (len(model.config.block_out_channels) - 1)  # 16 in the release
        self.codebook_size = model.config.num_vq_embeddings

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def side(self, resolution: int) -> int:
        if resolution % self.scale:
            raise ValueError(f"resolution {resolution} is not a multiple of the VQ downsampling {self.scale}")
        return resolution // self.scale

    def to_tensor(self, images: list[Image.Image], resolution: int) -> Tensor:
        """Pad to a square with black at the image's own size, then resize to the generation size
        (PIL's default filter), [0, 1] NCHW: `pad_to_square_and_resize` (mm_utils.py:28-31)."""
        arrs = [np.asarray(square_then_resize(im.convert("RGB"), resolution), dtype=np.float32) / 255.0
                for im in images]
        return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)

    @torch.no_grad()
    def encode(self, images: list[Image.Image], resolution: int) -> Tensor:
        """-> codes `[B, side*side]` (llava_arch.py:442-460)."""
        p = next(self.model.parameters())
        x = self.to_tensor(images, resolution).to(device=p.device, dtype=p.dtype)
        latents = self.model.encode(x).latents
        _, _, (_, _, indices) = self.model.quantize(latents)
        return indices.view(len(images), -1)

    @torch.no_grad()
    def decode(self, codes: Tensor, side: int) -> list[Image.Image]:
        """Codes `[B, side*side]` -> RGB images; clip to [0,1], *255, truncate to uint8 (llava_arch.py:462-485)."""
        shape = (codes.shape[0], side, side, self.model.config.latent_channels)
        out = self.model.decode(codes.to(self.device), force_not_quantize=True, shape=shape).sample
        arr = (out.float().clamp(0, 1).permute(0, 2, 3, 1) * 255).to(torch.uint8).cpu().numpy()
        return [Image.fromarray(a) for a in arr]


def tiny_vq_config(codebook_size: int = 8192) -> dict[str, Any]:
    """A diffusers VQModel config with the release's x16 downsampling and codebook size, small widths."""
    return {"_class_name": "VQModel", "in_channels": 3, "out_channels": 3,
            "down_block_types": ["DownEncoderBlock2D"] * 5, "up_block_types": ["UpDecoderBlock2D"] * 5,
            "block_out_channels": [8, 8, 16, 16, 16], "layers_per_block": 1, "latent_channels": 4,
            "num_vq_embeddings": codebook_size, "norm_num_groups": 4, "vq_embed_dim": 4,
            "lookup_from_codebook": True, "mid_block_add_attention": False, "sample_size": 64}
