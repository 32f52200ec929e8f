"""SigLIP-side image handling as the release does it (LaVida-O `llava/mm_utils.py:219-444`,
`llava/model/llava_arch.py:644-708`): anyres grid choice,
letterboxed tiles plus a mean-padded overview tile, and the merge of tile features into one token
sequence (unpad the letterbox, a learned newline column after each row of grid tokens).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

MEAN_GREY = (127, 127, 127)  # int(0.5 * 255): the SigLIP processor mean as a fill colour


def select_grid(size: tuple[int, int], pinpoints: list[list[int]]) -> tuple[int, int]:
    """LLaVA's rule (mm_utils.py:219-249): the (width, height) pinpoint with the largest effective
    resolution `min(scaled area, original area)`, ties broken by the least wasted area."""
    w, h = size
    best, best_eff, best_waste = None, -1, math.inf
    for tw, th in pinpoints:
        scale = min(tw / w, th / h)
        eff = min(int(w * scale) * int(h * scale), w * h)
        waste = tw * th - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (tw, th), eff, waste
    assert best is not None
    return best


def letterbox(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """Aspect-preserving resize (ceil) into `target`, pasted centred on black (mm_utils.py:252-288)."""
    tw, th = target
    w, h = image.size
    if tw / w < th / h:
        nw, nh = tw, min(math.ceil(h * (tw / w)), th)
    else:
        nw, nh = min(math.ceil(w * (th / h)), tw), th
    canvas = Image.new("RGB", target, (0, 0, 0))
    canvas.paste(image.resize((nw, nh), Image.BICUBIC), ((tw - nw) // 2, (th - nh) // 2))
    return canvas


def pad_square(image: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    w, h = image.size
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), colour)
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def tile_tensor(tile: Image.Image, size: int) -> Tensor:
    """SigLIP processor: bicubic resize, /255, normalise with mean 0.5 / std 0.5 -> [-1, 1], CHW."""
    arr = np.asarray(tile.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
    return torch.from_numpy((arr - 0.5) / 0.5).permute(2, 0, 1)


@dataclass(frozen=True)
class Tiles:
    """One image, pre-processed: overview tile first, then the grid tiles row-major."""

    pixels: Tensor  # [1 + rows*cols, 3, S, S]
    rows: int
    cols: int
    size: tuple[int, int]  # original (width, height)


def anyres_tiles(image: Image.Image, pinpoints: list[list[int]], tile: int) -> Tiles:
    image = image.convert("RGB")
    grid_w, grid_h = select_grid(image.size, pinpoints)
    boxed = letterbox(image, (grid_w, grid_h))
    crops = [boxed.crop((x, y, x + tile, y + tile)) for y in range(0, grid_h, tile) for x in range(0, grid_w, tile)]
    # Overview: padded to a square with the mean colour (DEBUG_FIX_PADDING, set by every official entry point).
    overview = pad_square(image, MEAN_GREY)
    pixels = torch.stack([tile_tensor(overview, tile)] + [tile_tensor(c, tile) for c in crops])
    return Tiles(pixels, grid_h // tile, grid_w // tile, image.size)


def single_tile(image: Image.Image, tile: int) -> Tiles:
    """Reflection feedback images: one mean-padded square tile (predict_t2i_edit.py:283-320)."""
    return Tiles(tile_tensor(pad_square(image.convert("RGB"), MEAN_GREY), tile)[None], 0, 0, image.size)


def unpad_rows_cols(size: tuple[int, int], rows: int, cols: int) -> tuple[slice, slice]:
    """Which rows/columns of the `rows x cols` feature grid hold image content (llava_arch.py:369-401)."""
    w, h = size
    if w / h > cols / rows:
        content = int(h * (cols / w))
        pad = (rows - content) // 2
        return slice(pad, rows - pad), slice(0, cols)
    content = int(w * (rows / h))
    pad = (cols - content) // 2
    return slice(0, rows), slice(pad, cols - pad)


def merge_features(feats: Tensor, tiles: Tiles, newline: Tensor) -> Tensor:
    """Tile features `[T, t*t, D]` -> the image's token sequence `[N, D]` (spatial_unpad, llava_arch.py:644-702)."""
    overview = feats[0]
    if tiles.rows == 0:  # single tile: its tokens then one newline (llava_arch.py:703-708)
        return torch.cat([overview, newline[None].to(feats.dtype)])
    side = int(math.isqrt(feats.shape[1]))
    d = feats.shape[-1]
    grid = feats[1:].view(tiles.rows, tiles.cols, side, side, d).permute(0, 2, 1, 3, 4)
    grid = grid.reshape(tiles.rows * side, tiles.cols * side, d)
    rs, cs = unpad_rows_cols(tiles.size, tiles.rows * side, tiles.cols * side)
    grid = grid[rs, cs]
    nl = newline.to(feats.dtype).expand(grid.shape[0], 1, d)
    return torch.cat([overview, torch.cat([grid, nl], dim=1).reshape(-1, d)])


def token_count(size: tuple[int, int], pinpoints: list[list[int]], tile: int, patch: int, stride: int) -> int:
    """Number of LLM positions an image of `size` takes (871 for 1024x1024 at the release's settings)."""
    side = (tile // patch) // stride
    gw, gh = select_grid(size, pinpoints)
    rows, cols = gh // tile * side, gw // tile * side
    rs, cs = unpad_rows_cols(size, rows, cols)
    return side * side + len(range(rows)[rs]) * (len(range(cols)[cs]) + 1)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """`resize_and_center_crop` as the later definition in mm_utils.py:504 does it: shortest side to
    `size` (LANCZOS), then an integer-offset centre crop. Used for edit sources and judged images."""
    w, h = image.size
    nw, nh = (size, int(h * (size / w))) if w < h else (int(w * (size / h)), size)
    image = image.convert("RGB").resize((nw, nh), Image.LANCZOS)
    left, top = (nw - size) // 2, (nh - size) // 2
    return image.crop((left, top, left + size, top + size))
