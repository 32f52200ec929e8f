"""Predictions at the official size: what each optimisation and baseline comparison should show
on a GPU, from the floor arithmetic and a device's (nominal or measured) rates.

The shapes are the ones the random-weight official run builds (the tokenizer of
speed.random_model, the release's prompts, a 640x480 input image, 1024 px images): sequence lengths
come from the same prompt and image-token code the pipeline uses, so a GPU measurement can be held
against these numbers directly. Qwen2.5-VL-7B's floor uses its published geometry (speed.qwen).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from lavida_bench.model import prompts
from lavida_bench.model.config import LavidaConfig
from lavida_bench.model.tiny import tiny_tokenizer
from lavida_bench.model.tokens import IMAGE_INDEX, chat_prompt, tokenize_with_images
from lavida_bench.model.vision import token_count
from lavida_bench.speed.baselines import grounding_prefix
from lavida_bench.speed.cases import CAPTION, EXPRESSION, QUESTION
from lavida_bench.speed.floor import (
    Pass,
    RowShape,
    without_prompt_recompute,
    workload_floor,
)
from lavida_bench.speed.qwen import OFFICIAL_TEXT, OFFICIAL_VISION
from lavida_bench.timing import DeviceRates, floor_seconds

H100_NOMINAL = DeviceRates("H100 SXM (datasheet: dense bf16, HBM3)", "bfloat16", 989e12, 3.35e12)
BF16 = 2


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    return tiny_tokenizer()


def text_rows(prompt: str, image_tokens: int = 0) -> int:
    """LLM positions of a prompt with its `<image>` slots expanded (the random model's tokenizer)."""
    tok = _tokenizer()
    ids = tokenize_with_images(tok, prompt, tok.convert_tokens_to_ids("<|startoftext|>"))
    return len(ids) - ids.count(IMAGE_INDEX) + ids.count(IMAGE_INDEX) * image_tokens


def image_tokens(cfg: LavidaConfig, size: tuple[int, int]) -> int:
    v = cfg.vision
    return token_count(size, cfg.image_grid_pinpoints, v.image_size, v.patch_size, cfg.pool_stride)


def tiles(cfg: LavidaConfig, size: tuple[int, int]) -> int:
    from lavida_bench.model.vision import select_grid

    gw, gh = select_grid(size, cfg.image_grid_pinpoints)
    return 1 + (gw // cfg.vision.image_size) * (gh // cfg.vision.image_size)


def lavida_workloads(cfg: LavidaConfig, size: tuple[int, int], answer: int, steps: int) -> dict[str, list[Pass]]:
    img = image_tokens(cfg, size)
    siglip = Pass("encode_tiles", count=tiles(cfg, size))
    und = text_rows(chat_prompt(prompts.understand_user(QUESTION, 1)), img)
    ground = text_rows(prompts.grounding_prompt(EXPRESSION), img)
    micro = prompts.micro_conditions(1024, prompts.IMAGE_SETTINGS["demo_1024"])
    t2i = text_rows(chat_prompt(prompts.t2i_user(CAPTION, micro), ""))
    ar_prefix = text_rows(grounding_prefix(EXPRESSION), img)
    gen, codes = 1024, 4096  # 1024 px: 64x64 codes -> 32x32 positions (LaVida-O predict_t2i_edit.py:197-218)
    answer_pass = [Pass("forward", [RowShape(answer, 0, und)]), Pass("text_logits", count=answer)]
    draw_step = [Pass("embed_codes", count=codes), Pass("code_logits", count=2 * codes)]
    return {
        "understand_cache_on": [siglip, Pass("forward", [RowShape(und)], prefix=True)] + answer_pass * answer,
        "understand_cache_off": [siglip] + [Pass("forward", [RowShape(und)], prefix=True)] * answer
        + answer_pass * answer,
        "ground1": [siglip, Pass("forward", [RowShape(ground)]), Pass("text_logits", count=4)],
        "ground_ar": [siglip, Pass("forward", [RowShape(ar_prefix)], prefix=True), Pass("text_logits", count=1)]
        + [Pass("forward", [RowShape(1, 0, ar_prefix + i)]) for i in range(3)] + [Pass("text_logits", count=1)] * 3,
        "t2i_image_only": (draw_step + [Pass("forward", [RowShape(t2i, gen)] * 2, image_only=True)]) * steps,
        "t2i_all_rows": (draw_step + [Pass("forward", [RowShape(t2i, gen)] * 2)]) * steps,
        "t2i_unbatched_cfg": (draw_step + [Pass("forward", [RowShape(t2i, gen)], image_only=True)] * 2) * steps,
    }


def qwen_floor(rates: DeviceRates, size: tuple[int, int], prompt: int, answer: int) -> float:
    """Prefill (vision tower + text over the prompt) then one memory-bound pass per further token."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    t, v = OFFICIAL_TEXT, OFFICIAL_VISION
    d, kv = t["hidden_size"], t["hidden_size"] * t["num_key_value_heads"] // t["num_attention_heads"]
    layer = 2 * d * d + 2 * d * kv + 3 * d * t["intermediate_size"]
    text_w, head = t["num_hidden_layers"] * layer, d * t["vocab_size"]
    dv = v["hidden_size"]
    vis_w = v["depth"] * (4 * dv * dv + 3 * dv * v["intermediate_size"]) + 4 * dv * 4 * dv + 4 * dv * d
    h, w = smart_resize(size[1], size[0])
    patches = (h // 14) * (w // 14)
    tokens = prompt + patches // 4
    prefill = floor_seconds(2.0 * (vis_w * patches + text_w * tokens + head), BF16 * (vis_w + text_w + head), rates)
    step = floor_seconds(2.0 * (text_w + head), BF16 * (text_w + head + 2 * t["num_hidden_layers"] * kv * tokens), rates)
    return prefill + (answer - 1) * step


def official_predictions(rates: DeviceRates = H100_NOMINAL, size: tuple[int, int] = (640, 480), answer: int = 256,
                         steps: int = 64, qwen_prompt: int = 30, qwen_answer: int = 30) -> dict[str, Any]:
    cfg = LavidaConfig.official()
    floors = {k: workload_floor(cfg, v, BF16, rates) for k, v in lavida_workloads(cfg, size, answer, steps).items()}
    image = lavida_workloads(cfg, size, answer, steps)["t2i_image_only"]
    floors["t2i_with_prompt_cache_(not_allowed)"] = workload_floor(cfg, without_prompt_recompute(image), BF16, rates)
    floors["qwen_ground"] = qwen_floor(rates, size, qwen_prompt, qwen_answer)
    return {"rates": rates.to_json(), "floor_s": floors, "predicted_speedup": {
        "prefix_cache": floors["understand_cache_off"] / floors["understand_cache_on"],
        "image_only": floors["t2i_all_rows"] / floors["t2i_image_only"],
        "cfg_batching": floors["t2i_unbatched_cfg"] / floors["t2i_image_only"],
        "ground1_vs_autoregressive": floors["ground_ar"] / floors["ground1"],
        "ground1_vs_qwen2_5_vl_7b": floors["qwen_ground"] / floors["ground1"],
        "prompt_cache_would_save": 1 - floors["t2i_with_prompt_cache_(not_allowed)"] / floors["t2i_image_only"],
    }}
