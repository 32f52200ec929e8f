"""CFG and three-way edit guidance against hand-computed numbers."""
import pytest
import torch

from lavida_bench.model.sampling.guidance import cfg, edit_guidance, guide_stacked

NEG_INF = float("-inf")


def test_cfg_formula_and_neg_inf_kept():
    cond = torch.tensor([[[1.0, 2.0, NEG_INF]]])
    uncond = torch.tensor([[[0.5, 3.0, 1.0]]])
    # (1+2)*cond - 2*uncond = [3-1, 6-6, -inf]
    assert cfg(cond, uncond, 2.0).tolist() == [[[2.0, 0.0, NEG_INF]]]


def test_cfg_scale_zero_is_cond():
    cond = torch.tensor([[[1.0, -2.0]]])
    assert torch.equal(cfg(cond, torch.zeros_like(cond), 0.0), cond)


@pytest.mark.parametrize(
    "mode,expected",
    [
        # c = 2.4*2 - 1.4*1 = 3.4; out = 2.2*3.4 - 1.2*0.5 = 6.88
        (0, 6.88),
        (3, 6.88),
        # c = (2 + 1.4*1)/2.4 = 1.416667; out = 2.2*1.416667 - 0.6 = 2.516667
        (1, 2.5166667),
        (2, 2.5166667),
    ],
)
def test_edit_guidance_modes(mode, expected):
    cond, uncond_enc, uncond = (torch.tensor([[[v, NEG_INF]]]) for v in (2.0, 1.0, 0.5))
    uncond[..., 1] = 0.0
    out = edit_guidance(cond, uncond_enc, uncond, scale=1.2, image_scale=1.4, mode=mode)
    assert out[0, 0, 0].item() == pytest.approx(expected, abs=1e-5)
    assert out[0, 0, 1].item() == NEG_INF


def test_edit_guidance_unknown_mode():
    t = torch.zeros(1, 1, 2)
    with pytest.raises(ValueError):
        edit_guidance(t, t, t, 1.0, 1.0, mode=4)


def test_guide_stacked_matches_release_row_order():
    uncond = torch.tensor([[[0.0, 3.0]]])
    uncond_enc = torch.tensor([[[1.0, 1.0]]])
    cond = torch.tensor([[[1.0, 2.0]]])
    # [uncond; cond]: (1+1)*cond - uncond = [2, 1]
    assert guide_stacked(torch.cat([uncond, cond]), 1.0).tolist() == [[[2.0, 1.0]]]
    stacked = torch.cat([uncond, uncond_enc, cond])
    assert torch.equal(
        guide_stacked(stacked, 1.2, image_scale=1.4), edit_guidance(cond, uncond_enc, uncond, 1.2, 1.4)
    )
    with pytest.raises(ValueError, match="stacked"):
        guide_stacked(torch.zeros(3, 1, 2), 1.0)
