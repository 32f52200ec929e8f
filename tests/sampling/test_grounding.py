"""Grounding: LOC quantisation in both frames, LOC parsing, one- and multi-step slot decoding."""
import pytest
import torch

from lavida_bench.model.sampling.grounding import (
    N_BINS,
    decode_positions,
    dequantize_box,
    parse_loc_text,
    quantize_box,
)

from .fakes import Sequenced

MASK = 9


def test_bins():
    assert N_BINS == 1025


def test_quantize_hand_values_non_square():
    # 200x100 image. pad_square: side 200, pad_top (200-100)//2 = 50, scale 1024/200 = 5.12
    # x1 10*5.12=51.2, y1 70*5.12=358.4, x2 110*5.12=563.2, y2 120*5.12=614.4
    assert quantize_box([10, 20, 110, 70], 200, 100) == [51, 358, 563, 614]
    # per_axis: x*1024/200, y*1024/100 -> 51.2, 204.8, 563.2, 716.8
    assert quantize_box([10, 20, 110, 70], 200, 100, frame="per_axis") == [51, 205, 563, 717]
    # portrait with an odd pad: 101x300 -> pad_left (300-101)//2 = 99, scale 1024/300
    # x1 (0+99)*3.41333 = 337.9 -> 338; y2 300*3.41333 = 1024
    assert quantize_box([0, 0, 101, 300], 101, 300) == [338, 0, 683, 1024]


def test_quantize_clamps_outside_boxes():
    assert quantize_box([-50, -50, 900, 900], 200, 100, frame="per_axis") == [0, 0, 1024, 1024]


@pytest.mark.parametrize("frame", ["pad_square", "per_axis"])
@pytest.mark.parametrize("size", [(640, 427), (333, 500), (1024, 1024)])
def test_round_trip(frame, size):
    width, height = size
    box = [12.3, 45.6, 0.7 * width, 0.9 * height]
    bins = quantize_box(box, width, height, frame)
    back = dequantize_box(bins, width, height, frame)
    # error at most half a bin in pixels
    half_bin_x = 0.5 * (max(size) if frame == "pad_square" else width) / 1024
    half_bin_y = 0.5 * (max(size) if frame == "pad_square" else height) / 1024
    assert all(abs(a - b) <= h + 1e-9 for a, b, h in zip(back, box, [half_bin_x, half_bin_y] * 2))
    assert quantize_box(back, width, height, frame) == bins


def test_dequantize_hand_values():
    # pad_square 200x100: bin/5.12 - pad -> 512/5.12 = 100, 512/5.12 - 50 = 50
    assert dequantize_box([512, 512, 1024, 1024], 200, 100) == pytest.approx([100, 50, 200, 150])


def test_frame_errors():
    with pytest.raises(ValueError, match="unknown frame"):
        quantize_box([0, 0, 1, 1], 10, 10, frame="stretch")
    with pytest.raises(ValueError, match="positive"):
        dequantize_box([0, 0, 1, 1], 0, 10)


def test_parse_loc_text():
    assert parse_loc_text("<LOC_BEGIN><LOC_102><LOC_230><LOC_512><LOC_900><LOC_END>") == [102, 230, 512, 900]
    assert parse_loc_text("a dog <LOC_7> and <LOC_> <LOC_x>") == [7]
    assert parse_loc_text("no box") == []


def step_logits(argmax: list[int], heights: list[float], vocab: int = 12) -> list[list[float]]:
    return [[h if v == t else 0.0 for v in range(vocab)] for t, h in zip(argmax, heights)]


def test_one_step_is_one_call_over_full_vocabulary():
    fn = Sequenced([step_logits([3, 11, 0, 7], [1.0, 2.0, 3.0, 4.0])])
    out, trace = decode_positions(fn, torch.full((2, 4), MASK), steps=1, mask_id=MASK)
    assert len(fn.calls) == trace.nfe == 1
    assert out.tolist() == [[3, 11, 0, 7]] * 2  # token 11 is past every LOC id here: kept as is
    assert fn.calls[0].tolist() == [[MASK] * 4] * 2


def test_two_steps_commit_two_by_raw_logit():
    fn = Sequenced([
        step_logits([1, 2, 3, 4], [5.0, 1.0, 7.0, 3.0]),
        step_logits([8, 5, 6, 7], [1.0, 1.0, 1.0, 1.0]),
    ])
    out, trace = decode_positions(fn, torch.full((1, 4), MASK), steps=2, mask_id=MASK)
    # call 1 commits the two highest raw logits (positions 2 and 0) into the next input
    assert fn.calls[1].tolist() == [[1, MASK, 3, MASK]]
    assert trace.nfe == 2
    assert out.tolist() == [[8, 5, 6, 7]]  # release: the last pass's argmax at every slot
    fn.calls.clear()
    committed, _ = decode_positions(fn, torch.full((1, 4), MASK), steps=2, mask_id=MASK, final="committed")
    assert committed.tolist() == [[1, 5, 3, 7]]


def test_three_steps_commit_ceil_remaining_over_steps_left():
    heights = [2.0, 4.0, 1.0, 3.0]
    fn = Sequenced([step_logits([1, 2, 3, 4], heights)] * 3)
    out, trace = decode_positions(fn, torch.full((1, 4), MASK), steps=3, mask_id=MASK, final="committed")
    # ceil(4/3)=2 (positions 1, 3), ceil(2/2)=1 (position 0), then the last one
    masked = [[p for p, v in enumerate(c[0].tolist()) if v == MASK] for c in fn.calls]
    assert masked == [[0, 1, 2, 3], [0, 2], [2]]
    assert out.tolist() == [[1, 2, 3, 4]] and trace.nfe == 3


def test_bad_steps():
    fn = Sequenced([step_logits([1, 2, 3, 4], [1.0] * 4)] * 5)
    with pytest.raises(ValueError, match="steps"):
        decode_positions(fn, torch.full((1, 4), MASK), steps=5, mask_id=MASK)
    with pytest.raises(ValueError, match="final"):
        decode_positions(fn, torch.full((1, 4), MASK), steps=1, mask_id=MASK, final="first")
