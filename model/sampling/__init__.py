"""Masked-diffusion samplers: pure schedules and decoding loops over a logits function.

No module here imports the network. A sampler takes `logits_fn`, one torch.Generator per row
and a frozen options object, and returns tokens plus a `SamplerTrace` (nfe, steps); the image
and text samplers are also exposed as pure batched step transitions (`image.transition`,
`text.text_step`) for callers that own the loop (the pipeline, compiled steps). Algorithms and
constants follow the official release (LaVida-O `llava/model/language_model/llada/generate.py`,
`llava/eval/predict_t2i_edit.py`, `llava/eval/pmj.py` and `llava/eval/predict_grounding.py`):

- schedules: transfer counts per step and temperature annealing (generate.py:54-111, predict_t2i_edit.py:377-402)
- pmj: the stratified spatial unmasking order (pmj.py:17-109)
- text: semi-autoregressive text decoding with low-confidence remasking (generate.py:217-390)
- image: VQ-code generation with stratified / mmada / mask_git policies (predict_t2i_edit.py:421-611)
- guidance: CFG and three-way editing guidance (predict_t2i_edit.py:443-488)
- grounding: LOC-bin boxes and one-/multi-step slot decoding (predict_grounding.py:57-127)
"""
from lavida_bench.model.sampling.grounding import (
    N_BINS,
    decode_positions,
    dequantize_box,
    parse_loc_text,
    quantize_box,
)
from lavida_bench.model.sampling.guidance import EditMode, cfg, edit_guidance, guide_stacked
from lavida_bench.model.sampling.image import ImageOptions, sample_image
from lavida_bench.model.sampling.pmj import stratified_order
from lavida_bench.model.sampling.schedules import temperature_schedule, transfer_counts
from lavida_bench.model.sampling.text import SamplerTrace, TextOptions, sample_text

__all__ = [
    "N_BINS",
    "EditMode",
    "ImageOptions",
    "SamplerTrace",
    "TextOptions",
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
