"""A strict detector of the synthetic world: colour segmentation, then shape classification.

Strict means it finds what the renderer draws and nothing else:

1. the background is the per-channel median of the border pixels;
2. a pixel belongs to palette colour k only if k is its nearest palette colour, it lies within
   COLOR_TOLERANCE of k (RGB distance) and it is nearer k than the background;
3. each 4-connected region of one colour (holes filled) is a candidate if it covers at least
   MIN_AREA_FRACTION of the image, stays off the image border and stands on the background: at
   least RING_BACKGROUND of the pixels 2-3 px around it are background (objects never touch);
4. the candidate is compared with the ideal circle, square and triangle rasterised into its own
   box; the best kind is kept if the mask IoU reaches SHAPE_IOU, and that IoU is the score.

Random noise has no large single-colour regions and a random-weight model's blobs fail the
shape test, so both give no detections; rendered scenes come back object for object with their
exact boxes (tests/world/test_detect.py measures both).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import numpy as np
from PIL import Image

from lavida_bench.backends.shapes import COLORS, SHAPES, Shape, draw_shapes

COLOR_TOLERANCE = 60.0  # < half the smallest distance between palette colours (orange-yellow, 85)
MIN_AREA_FRACTION = 0.004  # 16 px at 64x64; the smallest world object covers ~0.025
SHAPE_IOU = 0.8  # mask IoU with the ideal shape in the region's box
RING_BACKGROUND = 0.9  # share of background pixels in the ring around a region
_NAMES = list(COLORS)
_PALETTE = np.array([COLORS[n] for n in _NAMES], dtype=np.float32)
Box = tuple[float, float, float, float]


@dataclass(eq=False)
class Seen:
    """One detected object: `kind`, `color`, `box` xyxy (exclusive end), `score` = shape IoU,
    `mask` [H, W] bool."""

    kind: str
    color: str
    box: Box
    score: float
    mask: np.ndarray

    def shape(self) -> Shape:
        return Shape(self.kind, self.color, self.box)


def _ndimage() -> ModuleType:
    """scipy.ndimage, imported at the first detection: its import (about 0.1 s) would otherwise
    be paid by every config check that names a stand-in backend."""
    from scipy import ndimage

    return ndimage


def detect(image: Image.Image) -> list[Seen]:
    """Every world object in `image`, in raster order of their boxes."""
    ndimage = _ndimage()
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    labels, is_background = color_labels(arr)
    min_area = max(9, int(MIN_AREA_FRACTION * labels.size))
    found: list[Seen] = []
    for k in np.unique(labels[labels >= 0]):
        regions, _ = ndimage.label(ndimage.binary_fill_holes(labels == k))
        for comp, window in enumerate(ndimage.find_objects(regions), start=1):
            mask = regions == comp
            if window is None or int(mask.sum()) < min_area or not isolated(mask, window, is_background):
                continue
            kind, iou = classify(mask[window])
            if iou >= SHAPE_IOU:
                box = (float(window[1].start), float(window[0].start), float(window[1].stop), float(window[0].stop))
                found.append(Seen(kind, _NAMES[int(k)], box, iou, mask))
    return sorted(found, key=lambda s: (s.box[1], s.box[0]))


def isolated(mask: np.ndarray, window: tuple[slice, slice], is_background: np.ndarray) -> bool:
    """Off the border, and the ring 2-3 px around the region is (almost all) background."""
    height, width = mask.shape
    rows, cols = window
    if rows.start == 0 or cols.start == 0 or rows.stop == height or cols.stop == width or \
            min(rows.stop - rows.start, cols.stop - cols.start) < 3:
        return False
    around = (slice(max(0, rows.start - 4), rows.stop + 4), slice(max(0, cols.start - 4), cols.stop + 4))
    local = mask[around]
    ndimage = _ndimage()
    ring = ndimage.binary_dilation(local, iterations=3) & ~ndimage.binary_dilation(local, iterations=1)
    return bool(ring.any()) and float(is_background[around][ring].mean()) >= RING_BACKGROUND


def color_labels(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([H, W] palette index per pixel, -1 for background and unknown colours; [H, W] bool:
    the pixel is background)."""
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    background = np.median(border, axis=0)
    dist = np.linalg.norm(arr[:, :, None, :] - _PALETTE[None, None], axis=-1)  # [H, W, K]
    nearest = dist.argmin(-1)
    best = np.take_along_axis(dist, nearest[..., None], -1)[..., 0]
    to_background = np.linalg.norm(arr - background, axis=-1)
    keep = (best < COLOR_TOLERANCE) & (best < to_background)
    return np.where(keep, nearest, -1), to_background < COLOR_TOLERANCE


def classify(local: np.ndarray) -> tuple[str, float]:
    """(kind, IoU) of the ideal shape that best matches a region's mask cropped to its box."""
    best = ("", 0.0)
    for kind in SHAPES:
        ideal = ideal_mask(kind, local.shape[1], local.shape[0])
        inter = np.logical_and(ideal, local).sum()
        iou = float(inter / np.logical_or(ideal, local).sum())
        if iou > best[1]:
            best = (kind, iou)
    return best


@lru_cache(maxsize=4096)
def _ideal(kind: str, width: int, height: int) -> bytes:
    drawn = draw_shapes((width, height), [Shape(kind, "black", (0, 0, width, height))])
    return np.packbits(np.asarray(drawn)[..., 0] == 0).tobytes()


def ideal_mask(kind: str, width: int, height: int) -> np.ndarray:
    """The renderer's own `kind` filling a width x height box, as a bool mask."""
    bits = np.unpackbits(np.frombuffer(_ideal(kind, width, height), dtype=np.uint8))
    return bits[: width * height].reshape(height, width).astype(bool)


def foreground_explained(image: Image.Image, seen: list[Seen]) -> float:
    """Share of the image's non-background pixels that lie in a detected object (1.0 if none)."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    _, is_background = color_labels(arr)
    foreground = ~is_background
    if not foreground.any():
        return 1.0
    covered = np.zeros_like(foreground)
    for s in seen:
        covered |= s.mask
    return float((foreground & covered).sum() / foreground.sum())
