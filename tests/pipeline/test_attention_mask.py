"""A batch without padding runs attention unmasked: every forward pass gets `valid=None` (an
all-True mask would keep SDPA off its fused kernels on every decoding step), while a padded
batch still passes its validity mask so rows never see each other's padding."""
from __future__ import annotations

import pytest

from lavida_bench.api import Options, Request
from tests.pipeline.conftest import picture


def _valids(forwards) -> list:
    return [kwargs.get("valid") for _, kwargs in forwards.calls]


@pytest.mark.parametrize("capability", ["understand", "ground"])
def test_unpadded_batch_passes_no_mask(pipe, forwards, capability):
    request = Request("a", capability, "the red circle", images=[picture(64, 48, 3)],
                      options=Options(max_new_tokens=8, steps=2), seed=1)
    getattr(pipe, capability)([request])
    assert len(forwards) > 0
    assert all(v is None for v in _valids(forwards))


def test_padded_batch_keeps_its_mask(pipe, forwards):
    requests = [Request(str(i), "understand", prompt, images=[picture(64, 48, i)],
                        options=Options(max_new_tokens=8), seed=i)
                for i, prompt in enumerate(["short", "a much longer question about the picture"])]
    pipe.understand(requests)
    prefix_valid = _valids(forwards)[0]
    assert prefix_valid is not None and not bool(prefix_valid.all())
