"""Stratified (PMJ) order: release test vectors and the progressive-stratification property."""
import pytest

from lavida_bench.model.sampling.pmj import stratified_order


def test_release_vectors():
    # computed from the release's LaVida-O llava/eval/pmj.py:17-109 (n=64, seed 42)
    assert stratified_order(64, 42)[:16] == (
        2959, 424, 3813, 66, 1725, 312, 1686, 3251, 2268, 1771, 88, 2302, 2220, 1737, 3222, 3521,
    )
    assert stratified_order(32, 42)[:8] == (743, 116, 946, 1, 446, 92, 427, 825)


@pytest.mark.parametrize("n", [1, 2, 4, 16, 64])
def test_covers_every_cell_once(n):
    order = stratified_order(n)
    assert sorted(order) == list(range(n * n))


@pytest.mark.parametrize("n", [8, 64])
def test_one_per_quadrant_before_any_second(n):
    order = stratified_order(n)
    half = n // 2
    quadrants = [((i % n) // half, (i // n) // half) for i in order[:4]]
    assert len(set(quadrants)) == 4
    # and recursively: the first 4^k cells hit every cell of the 2^k x 2^k tiling exactly once
    level = 1
    while 4**level <= n * n:
        size = n // 2**level
        cells = {((i % n) // size, (i // n) // size) for i in order[: 4**level]}
        assert len(cells) == 4**level
        level += 1


def test_seed_changes_order_and_cache_returns_same_tuple():
    assert stratified_order(16, 1) != stratified_order(16, 2)
    assert stratified_order(16, 1) is stratified_order(16, 1)
    assert isinstance(stratified_order(16, 1), tuple)


@pytest.mark.parametrize("n", [0, 3, 48])
def test_non_power_of_two_is_an_error(n):
    with pytest.raises(ValueError, match="power of two"):
        stratified_order(n)
