"""Token sequences with spliced image features, batched for one forward pass.

A `Row` is one sequence as the network sees it: `ids` has one entry per LLM position (image
feature positions carry IMAGE_INDEX) and `features` holds the spliced SigLIP vectors in order.
`Batch` right-pads rows and keeps a validity mask, so rows never see each other's padding.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lavida_bench.model.network import LavidaNetwork
from lavida_bench.model.tokens import IMAGE_INDEX, tokenize_with_images
from lavida_bench.model.vision import Tiles, merge_features


@dataclass
class Row:
    ids: list[int]
    features: Tensor | None  # [n_image_positions, d_model]

    def positions_of(self, token_id: int) -> list[int]:
        return [i for i, t in enumerate(self.ids) if t == token_id]


@dataclass
class Batch:
    ids: Tensor  # [B, L] (padding = pad id, image features = IMAGE_INDEX)
    embeds: Tensor  # [B, L, d]
    valid: Tensor  # [B, L] bool
    padded: bool = True  # host copy of `not valid.all()`, known when the batch is built

    @property
    def attend(self) -> Tensor | None:
        """The `valid` a forward pass needs: None when no row is padded, so attention runs
        unmasked (a mask of all True would keep SDPA off its fused kernels)."""
        return self.valid if self.padded else None

    def mask_of(self, token_id: int) -> Tensor:
        return (self.ids == token_id) & self.valid

    def repeat(self, k: int) -> "Batch":
        return Batch(self.ids.repeat(k, 1), self.embeds.repeat(k, 1, 1), self.valid.repeat(k, 1), self.padded)


class SequenceBuilder:
    """Turns prompt strings and images into rows and rows into embedded batches."""

    def __init__(self, network: LavidaNetwork, tokenizer, bos_id: int, pad_id: int):
        self.network, self.tokenizer, self.bos_id, self.pad_id = network, tokenizer, bos_id, pad_id

    @property
    def device(self) -> torch.device:
        return self.network.model.transformer.wte.weight.device

    def image_features(self, tiles: list[Tiles]) -> list[Tensor]:
        """All tiles of all images through SigLIP in one call, then merged per image."""
        if not tiles:
            return []
        pixels = torch.cat([t.pixels for t in tiles]).to(self.device)
        feats = self.network.encode_tiles(pixels)
        out, start = [], 0
        newline = self.network.model.image_newline
        for t in tiles:
            n = t.pixels.shape[0]
            out.append(merge_features(feats[start:start + n], t, newline))
            start += n
        return out

    def plain_features(self, tiles: list[Tiles]) -> list[Tensor]:
        """One single tile per image, its tokens alone (no newline): the release's plain path for
        a stacked `[N, 3, S, S]` image tensor, which is how lmms-eval passes several images of
        one question ("pad" aspect ratio; llava_llada.py:512-531, llava_arch.py:434-440 and 712)."""
        if not tiles:
            return []
        feats = self.network.encode_tiles(torch.cat([t.pixels for t in tiles]).to(self.device))
        return list(feats.unbind(0))

    def row(self, prompt: str, image_features: list[Tensor]) -> Row:
        """Tokenize like the release (tokenizer_image_token) and expand each `<image>` slot."""
        ids = tokenize_with_images(self.tokenizer, prompt, self.bos_id)
        slots = ids.count(IMAGE_INDEX)
        if slots != len(image_features):
            raise ValueError(f"prompt has {slots} <image> slots but {len(image_features)} images were given")
        expanded: list[int] = []
        it = iter(image_features)
        for t in ids:
            expanded.extend([IMAGE_INDEX] * next(it).shape[0] if t == IMAGE_INDEX else [t])
        features = torch.cat(image_features) if image_features else None
        return Row(expanded, features)

    def batch(self, rows: list[Row]) -> Batch:
        length = max(len(r.ids) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        valid = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, :len(r.ids)] = torch.tensor(r.ids)
            valid[i, :len(r.ids)] = True
        ids, valid = ids.to(self.device), valid.to(self.device)
        embeds = self.network.embed_text(ids.clamp(min=0))
        is_feature = ids == IMAGE_INDEX
        if is_feature.any():
            embeds[is_feature] = torch.cat([r.features for r in rows if r.features is not None]).to(embeds.dtype)
        return Batch(ids, embeds, valid, padded=any(len(r.ids) < length for r in rows))
