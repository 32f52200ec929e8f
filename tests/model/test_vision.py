"""SigLIP-side image handling: anyres grid choice, letterbox, unpad, feature merge and token counts
(LaVida-O `llava/mm_utils.py:219-444`, `llava/model/llava_arch.py:644-708`). Expected values are worked by
hand in the comments."""
from __future__ import annotations

import pytest
import torch
from lavida_bench.model import vision
from lavida_bench.model.config import LavidaConfig
from PIL import Image

RELEASE = LavidaConfig.official()
PIN = RELEASE.image_grid_pinpoints  # [[384,768],[768,384],[768,768],[1152,384],[384,1152]] (Demo.ipynb cell 3)
TINY = LavidaConfig.tiny()
BLACK, RED = (0, 0, 0), (200, 30, 30)


def release_count(size: tuple[int, int]) -> int:
    return vision.token_count(size, PIN, tile=384, patch=14, stride=2)


def tiny_count(size: tuple[int, int], pinpoints: list[list[int]] = TINY.image_grid_pinpoints) -> int:
    return vision.token_count(size, pinpoints, tile=56, patch=14, stride=2)


# --- grid choice (mm_utils.py:219-249) ------------------------------------------------------------
@pytest.mark.parametrize("size, grid", [
    ((1024, 1024), (768, 768)),   # 768x768: s=.75 -> 768*768 = 589824 px kept, others <= 393216
    ((1024, 768), (768, 768)),    # s=.75 -> 768x576 = 442368; 768x384 / 1152x384: s=.5 -> 196608
    ((768, 384), (768, 384)),     # exact fit; 768x768 and 1152x384 keep as much but waste more
    ((1000, 300), (1152, 384)),   # s=1.152 -> capped at the original 300000; 768-wide: 176640
    ((300, 1000), (384, 1152)),   # the transpose
    ((200, 200), (384, 768)),     # every grid keeps all 40000 px; least waste: 384x768 == 768x384, first wins
])
def test_select_grid_release_pinpoints(size, grid) -> None:
    assert vision.select_grid(size, PIN) == grid


# --- letterbox (mm_utils.py:252-288) --------------------------------------------------------------


@pytest.mark.parametrize("size, target, axis, span", [
    # 30x70 into 56x168, width-bound: ceil(70 * (56/30) = 130.67) = 131 rows at y=(168-131)//2=18.
    ((30, 70), (56, 168), "rows", (18, 148)),
    # 100x50 into 112x112, width-bound: the release's float ceil(50 * 1.12 = 56.00000000000001) = 57
    # rows, pasted at y=(112-57)//2=27.
    ((100, 50), (112, 112), "rows", (27, 83)),
    # 50x100 into 112x112, height-bound: 57 columns at x=27 for the same reason.
    ((50, 100), (112, 112), "cols", (27, 83)),
])
def test_letterbox_content_span(size, target, axis, span) -> None:
    """mm_utils.py resize_and_pad_image: new side = min(ceil(side * scale), target), centred on black."""
    out = vision.letterbox(Image.new("RGB", size, RED), target)
    assert out.size == target
    if axis == "rows":
        line = [out.getpixel((target[0] // 2, y)) for y in range(target[1])]
    else:
        line = [out.getpixel((x, target[1] // 2)) for x in range(target[0])]
    content = [i for i, px in enumerate(line) if px != BLACK]
    assert (content[0], content[-1]) == span
    assert all(line[i] == RED for i in range(span[0] + 1, span[1]))  # uniform colour survives bicubic


# --- unpad (llava_arch.py:369-401) ------------------------------------------------------------------
@pytest.mark.parametrize("size, rows, cols, want", [
    ((1024, 768), 26, 26, (slice(3, 23), slice(0, 26))),  # int(768*26/1024)=19, pad (26-19)//2=3
    ((768, 1024), 26, 26, (slice(0, 26), slice(3, 23))),
    ((768, 384), 13, 26, (slice(0, 13), slice(0, 26))),   # aspect equals the grid's: nothing cut
    ((224, 80), 4, 4, (slice(1, 3), slice(0, 4))),        # int(80*4/224)=1, pad (4-1)//2=1
])
def test_unpad_rows_cols(size, rows, cols, want) -> None:
    assert vision.unpad_rows_cols(size, rows, cols) == want


# --- token counts (computed from llava_arch.py:644-702) ------------------------------------------
@pytest.mark.parametrize("size, count", [
    ((1024, 1024), 871),  # 169 + 26*(26+1)
    ((1024, 768), 709),   # 169 + 20*27
    ((768, 1024), 715),   # 169 + 26 rows * (20 cols + newline)
    ((768, 384), 520),    # 1x2 tiles: 169 + 13*(26+1)
])
def test_release_token_counts(size, count) -> None:
    assert release_count(size) == count


@pytest.mark.parametrize("size, count", [
    ((112, 112), 24),  # 112x112 grid, 4x4 features: 4 overview + 4*(4+1)
    ((224, 112), 14),  # 112x56 grid (s=.5 exact fit), 2x4 features: 4 + 2*5
    ((112, 224), 16),  # 56x112 grid, 4x2 features: 4 + 4*3
])
def test_tiny_token_counts(size, count) -> None:
    assert tiny_count(size) == count


# --- merge layout ---------------------------------------------------------------------------------
def labelled_feats(n_tiles: int, per_tile: int) -> torch.Tensor:
    """feats[t, i, 0] = 100*t + i, so every merged token says where it came from."""
    return (100 * torch.arange(n_tiles)[:, None] + torch.arange(per_tile)[None]).float()[..., None]


@pytest.mark.parametrize("size, kept_rows", [((112, 112), range(4)), ((224, 80), range(1, 3))])
def test_merge_features_layout(size, kept_rows) -> None:
    """2x2 tiles of 2x2 tokens: grid cell (r, c) comes from tile 1 + (r//2)*2 + c//2, token
    (r%2)*2 + c%2; each kept row of 4 cells is followed by the newline (-1); overview first."""
    tiles = vision.Tiles(torch.zeros(5, 3, 56, 56), rows=2, cols=2, size=size)
    merged = vision.merge_features(labelled_feats(5, 4), tiles, torch.tensor([-1.0]))[:, 0].tolist()
    want = [0, 1, 2, 3]
    for r in kept_rows:
        want += [100 * (1 + (r // 2) * 2 + c // 2) + (r % 2) * 2 + c % 2 for c in range(4)] + [-1]
    assert merged == want


def test_single_tile_merge_appends_one_newline() -> None:
    tiles = vision.single_tile(Image.new("RGB", (80, 40), RED), 56)
    assert tiles.pixels.shape == (1, 3, 56, 56)
    merged = vision.merge_features(labelled_feats(1, 4), tiles, torch.tensor([-1.0]))[:, 0].tolist()
    assert merged == [0, 1, 2, 3, -1]


def test_anyres_tiles_pixels() -> None:
    # 112x56 red image -> grid 112x56 (exact fit), 1x2 tiles; overview padded to 112x112 with mean grey.
    tiles = vision.anyres_tiles(Image.new("RGB", (112, 56), RED), TINY.image_grid_pinpoints, 56)
    assert (tiles.rows, tiles.cols, tiles.size) == (1, 2, (112, 56))
    assert tiles.pixels.shape == (3, 3, 56, 56)
    grey = (127 / 255 - 0.5) / 0.5  # siglip_encoder.py:46-79: x/255, mean 0.5, std 0.5; pad colour int(0.5*255)
    torch.testing.assert_close(tiles.pixels[0, :, 0, 0], torch.full((3,), grey))
    red = torch.tensor([(v / 255 - 0.5) / 0.5 for v in RED])
    torch.testing.assert_close(tiles.pixels[0, :, 28, 28], red)
    torch.testing.assert_close(tiles.pixels[1, :, 0, 0], red)  # grid tiles have no padding here


@pytest.mark.parametrize("size", [(112, 112), (224, 112), (112, 224), (150, 100), (224, 80), (37, 91), (300, 56)])
def test_encoded_and_merged_count_equals_token_count(tiny_parts, size) -> None:
    net = tiny_parts[0]
    tiles = vision.anyres_tiles(Image.new("RGB", size, RED), TINY.image_grid_pinpoints, TINY.vision.image_size)
    feats = net.encode_tiles(tiles.pixels)
    assert feats.shape == (1 + tiles.rows * tiles.cols, 4, TINY.d_model)  # (56/14 // 2)^2 = 4 tokens per tile
    merged = vision.merge_features(feats, tiles, net.model.image_newline)
    assert merged.shape == (tiny_count(size), TINY.d_model)


def test_real_unpad_with_custom_pinpoints(tiny_parts) -> None:
    # Only 112x112 allowed: 224x80 is letterboxed, 4x4 features, rows 1..2 kept -> 4 + 2*5 = 14.
    net, pins = tiny_parts[0], [[112, 112]]
    tiles = vision.anyres_tiles(Image.new("RGB", (224, 80), RED), pins, 56)
    merged = vision.merge_features(net.encode_tiles(tiles.pixels), tiles, net.model.image_newline)
    assert merged.shape[0] == tiny_count((224, 80), pins) == 14


def official_center_crop(image: Image.Image, size: int) -> Image.Image:
    """The later `resize_and_center_crop` in mm_utils.py (the one that wins, :504): shortest side
    to `size` with int() truncation, LANCZOS, integer-offset crop."""
    w, h = image.size
    nw, nh = (size, int(h * (size / w))) if w < h else (int(w * (size / h)), size)
    left, top = (nw - size) // 2, (nh - size) // 2
    return image.resize((nw, nh), Image.LANCZOS).crop((left, top, left + size, top + size))


def gradient(w: int, h: int) -> Image.Image:
    x = torch.arange(w)[None, :, None].expand(h, w, 3)
    y = torch.arange(h)[:, None, None].expand(h, w, 3)
    return Image.fromarray(((x * 7 + y * 3) % 256).to(torch.uint8).numpy())


def test_center_crop() -> None:
    # 200x100 (left half red, right half blue) -> shortest side 50: 100x50, crop x 25..75.
    image = Image.new("RGB", (200, 100), RED)
    image.paste((0, 0, 255), (100, 0, 200, 100))
    out = vision.center_crop(image, 50)
    assert out.size == (50, 50)
    assert out.getpixel((5, 25)) == RED and out.getpixel((45, 25)) == (0, 0, 255)
    assert out.tobytes() == official_center_crop(image, 50).tobytes()


def test_center_crop_truncates_like_the_release() -> None:
    image = gradient(300, 452)
    assert vision.center_crop(image, 100).tobytes() == official_center_crop(image, 100).tobytes()


# --- feature path: tower layer -2 -> conv 2x2 resampler -> Linear-GELU(exact)-Linear (llava_arch.py:434-440)
def conv2x2(grid: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Conv2d k=2 s=2 with bias as explicit window sums; grid `[side, side, C]` -> `[side//2, side//2, O]`
    (an odd last row/column is never covered, spatial_pool.py: 27x27 -> 13x13)."""
    half = grid.shape[0] // 2
    out = torch.zeros(half, half, weight.shape[0], dtype=torch.float64)
    for i in range(half):
        for j in range(half):
            out[i, j] = bias.double() + sum(weight[:, :, a, b].double() @ grid[2 * i + a, 2 * j + b].double()
                                            for a in range(2) for b in range(2))
    return out


def test_resampler_drops_the_odd_row_and_column() -> None:
    from tests.model.helpers import scrambled

    net = scrambled(TINY, seed=21)
    feats = torch.randn(1, 27 * 27, TINY.mm_hidden_size)
    pool = net.model.vision_resampler.pool
    got = net.model.vision_resampler(feats)
    assert got.shape == (1, 169, TINY.mm_hidden_size)
    want = conv2x2(feats[0].view(27, 27, -1), pool.weight, pool.bias).reshape(169, -1)
    torch.testing.assert_close(got[0].double(), want, atol=1e-5, rtol=1e-5)


def test_encode_tiles_uses_pre_post_layernorm_features() -> None:
    """encode_tiles = projector(resampler(input of post_layernorm)); GELU is the exact (erf) one."""
    from tests.model.helpers import scrambled

    net = scrambled(TINY, seed=22)
    tower = net.model.vision_tower.vision_tower["vision_model"]
    seen: list[torch.Tensor] = []
    handle = tower.post_layernorm.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    try:
        pixels = torch.rand(3, 3, 56, 56) * 2 - 1
        got = net.encode_tiles(pixels)
    finally:
        handle.remove()
    assert len(seen) == 1 and seen[0].shape == (3, 16, TINY.mm_hidden_size)  # 4x4 patches of 14 px
    pool, proj = net.model.vision_resampler.pool, net.model.mm_projector
    for t in range(3):
        pooled = conv2x2(seen[0][t].view(4, 4, -1), pool.weight, pool.bias).reshape(4, -1)
        h = pooled @ proj[0].weight.double().T + proj[0].bias.double()
        h = 0.5 * h * (1 + torch.erf(h / 2 ** 0.5))
        want = h @ proj[2].weight.double().T + proj[2].bias.double()
        torch.testing.assert_close(got[t].double(), want, atol=1e-5, rtol=1e-5)
