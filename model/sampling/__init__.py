"""Masked-diffusion samplers: pure schedules and decoding loops over a logits function.

No module here imports the network. A sampler takes `logits_fn`, its options and one
torch.Generator per row, and returns tokens plus a `SamplerTrace` (nfe, steps). Algorithms and
constants follow lavida-o-model.md §6 (the official release's generate.py, predict_t2i_edit.py,
pmj.py and predict_grounding.py):

- schedules: transfer counts per step and temperature annealing (§6.1, §6.2)
- pmj: the stratified spatial unmasking order (§6.2.1)
- text: semi-autoregressive text decoding with low-confidence remasking (§6.1)
- image: VQ-code generation with stratified / mmada / mask_git policies (§6.2)
- guidance: CFG and three-way editing guidance (§6.2, §6.3)
- grounding: LOC-bin boxes and one-/multi-step slot decoding (§5.5, §6.4)
"""
from lavida_bench.model.sampling.grounding import (
    N_BINS,
    decode_positions,
    dequantize_box,
    parse_loc_text,
    quantize_box,
)
from lavida_bench.model.sampling.guidance import EditMode, cfg, edit_guidance, guide_stacked
from lavida_bench.model.sampling.image import sample_image
from lavida_bench.model.sampling.pmj import stratified_order
from lavida_bench.model.sampling.schedules import temperature_schedule, transfer_counts
from lavida_bench.model.sampling.text import SamplerTrace, sample_text

__all__ = [
    "N_BINS",
    "EditMode",
    "SamplerTrace",
    "cfg",
    "decode_positions",
    "dequantize_box",
    "edit_guidance",
    "guide_stacked",
    "parse_loc_text",
    "quantize_box",
    "sample_image",
    "sample_text",
    "stratified_order",
    "temperature_schedule",
    "transfer_counts",
]
