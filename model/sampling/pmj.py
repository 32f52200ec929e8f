"""Stratified ("progressive multi-jittered") unmasking order of the image-code grid.

The release reveals image codes in a fixed, seeded spatial order so that every step spreads its
new tokens evenly over the image: first one cell in each quadrant, then one in each sixteenth,
and so on (release `llava/eval/pmj.py:17-109`). The draws go through
CPython's `random.Random` in exactly the release's call order, so the order is identical to the
one that produced the paper's images (test vectors in tests/sampling/test_pmj.py).
"""
from __future__ import annotations

import functools
import random

Block = tuple[int, int, int]  # (x0, y0, side)


def _quadrants(block: Block) -> list[Block]:
    """The four children of a block, listed NW, NE, SW, SE (release order, pmj.py:17-109)."""
    x0, y0, side = block
    half = side // 2
    return [(x0, y0, half), (x0 + half, y0, half), (x0, y0 + half, half), (x0 + half, y0 + half, half)]


@functools.lru_cache(maxsize=16)
def stratified_order(n: int, seed: int = 42) -> tuple[int, ...]:
    """Row-major indices y*n + x of all n*n cells in the release's progressive order.

    Per level: split every block into quadrants, shuffle the children with the seeded RNG, and
    in each child that holds no earlier sample draw x = randrange(x0, x0+s), then
    y = randrange(y0, y0+s) (pmj.py:17-109). `n` is the grid side (64 for 1024 px images) and must be
    a power of two, as in the release.
    """
    if n < 1 or n & (n - 1):
        raise ValueError(f"stratified_order: grid side must be a positive power of two, got {n}")
    rng = random.Random(seed)
    occupied: set[tuple[int, int]] = set()
    order: list[int] = []
    blocks: list[Block] = [(0, 0, n)]
    side = n
    while side > 1:
        half = side // 2
        children = [child for block in blocks for child in _quadrants(block)]
        rng.shuffle(children)
        # Each earlier sample lies in exactly one child of this level: those children are full.
        full = {(x // half, y // half) for x, y in occupied}
        for x0, y0, _ in children:
            if (x0 // half, y0 // half) in full:
                continue
            x = rng.randrange(x0, x0 + half)  # empty child: the release's first draw always lands
            y = rng.randrange(y0, y0 + half)
            occupied.add((x, y))
            order.append(y * n + x)
        blocks = children
        side = half
    # Cells no level reached (none for a power-of-two grid), in shuffled order, as the release does.
    remaining = [y * n + x for y in range(n) for x in range(n) if (x, y) not in occupied]
    rng.shuffle(remaining)
    return tuple(order + remaining)
