"""What every pipeline part shares: the loaded checkpoint, the sequence builder and the settings
a pipeline was built with. One object, so a part never keeps a stale copy of the network."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from lavida_bench.model import prompts
from lavida_bench.model.checkpoint import Checkpoint
from lavida_bench.model.network import LavidaNetwork
from lavida_bench.model.sequences import SequenceBuilder
from lavida_bench.model.stages import generators
from lavida_bench.model.vision import Tiles, anyres_tiles
from lavida_bench.api import Request


@dataclass
class ModelParts:
    """The checkpoint plus a pipeline's settings. `image_only` skips text rows after the joint
    blocks while drawing (same images); `compile_steps` runs each denoising step compiled;
    `prefix_lm` decodes text against a prompt cache (False: the whole sequence each step,
    text_decoder.py)."""

    ck: Checkpoint
    builder: SequenceBuilder
    settings_name: str = "demo_1024"
    resolution: int = 1024
    grounding_frame: str = "pad_square"
    dtype: torch.dtype = torch.float32
    image_only: bool = True
    compile_steps: bool = False
    prefix_lm: bool = True

    @classmethod
    def of(cls, checkpoint: Checkpoint, **settings: Any) -> "ModelParts":
        name = settings.get("settings_name", "demo_1024")
        if name not in prompts.IMAGE_SETTINGS:
            raise ValueError(f"image_settings {name!r}: choose one of {sorted(prompts.IMAGE_SETTINGS)}")
        ids = checkpoint.ids
        builder = SequenceBuilder(checkpoint.network, checkpoint.tokenizer, ids.bos, ids.eos)
        settings.setdefault("dtype", next(checkpoint.network.parameters()).dtype)
        return cls(checkpoint, builder, **settings)

    @property
    def net(self) -> LavidaNetwork:
        return self.builder.network

    @net.setter
    def net(self, network: LavidaNetwork) -> None:
        self.builder.network = network

    @property
    def ids(self) -> Any:
        return self.ck.ids

    @property
    def tokenizer(self) -> Any:
        return self.ck.tokenizer

    @property
    def settings(self) -> prompts.ImageSettings:
        return prompts.IMAGE_SETTINGS[self.settings_name]

    @property
    def device(self) -> torch.device:
        return self.builder.device

    @property
    def tile(self) -> int:
        return self.ck.config.vision.image_size

    def tiles(self, image: Image.Image) -> Tiles:
        """The anyres tiles of one image (overview first), as the release's SigLIP input."""
        return anyres_tiles(image, self.ck.config.image_grid_pinpoints, self.tile)

    def resolution_of(self, request: Request) -> int:
        return request.options.resolution or self.resolution

    def generators(self, seeds: list[int]) -> list[torch.Generator]:
        return generators(self.device, seeds)
