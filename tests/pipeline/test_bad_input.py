"""Bad requests fail with a clear ValueError that names the offending value, before any forward
pass is spent. The tiny VQ downsamples by 16 and the generation branch's 2x2 conv needs an even
code grid, so its resolutions are multiples of 32 (LaVida-O `llava/model/llava_arch.py:235-274`)."""
from __future__ import annotations

import pytest

from lavida_bench.api import Options, Request
from tests.pipeline.conftest import STEPS, picture


class NoForward:
    """Fails the test if the network runs: validation must come before any compute."""

    def __call__(self, *args, **kwargs):
        raise AssertionError("a network forward pass ran before the bad resolution was rejected")


@pytest.fixture
def no_forward(pipe, monkeypatch):
    monkeypatch.setattr(pipe.net, "forward", NoForward())


def request(capability: str, resolution: int, plan: bool = False) -> Request:
    images = [picture(64, 64, 1)] if capability == "edit" else []
    return Request("bad", capability, "a red cube", images=images,
                   options=Options(steps=STEPS, resolution=resolution, plan=plan), seed=1)


@pytest.mark.parametrize("capability", ["generate", "edit"])
def test_resolution_not_multiple_of_vq_scale(pipe, no_forward, capability):
    with pytest.raises(ValueError, match=r"resolution 40\b"):
        getattr(pipe, capability)([request(capability, 40)])




@pytest.mark.parametrize("capability", ["generate", "edit"])
def test_resolution_with_odd_code_grid(pipe, no_forward, capability):
    with pytest.raises(ValueError, match=r"resolution 48\b"):
        getattr(pipe, capability)([request(capability, 48)])


def test_bad_resolution_rejected_before_planning(pipe, no_forward):
    with pytest.raises(ValueError, match=r"resolution 40\b"):
        pipe.generate([request("generate", 40, plan=True)])


def test_batch_with_mixed_resolutions(pipe, no_forward):
    with pytest.raises(ValueError, match="one resolution"):
        pipe.generate([request("generate", 64), Request("b", "generate", "x", options=Options(resolution=128))])
