"""Qwen2.5-VL-7B behind the capability protocol: the paper's grounding speed baseline (6.8x,
arXiv 2509.19244).

Three ways to get it, all through `transformers.Qwen2_5_VLForConditionalGeneration`:
- `path`: a local folder with the released weights and processor (nothing is downloaded);
- preset "official": the real 7B architecture with random weights, built straight on the
  device in the model dtype, for speed-only runs. Geometry of Qwen/Qwen2.5-VL-7B-Instruct's
  config.json: text 28 layers, hidden 3584, MLP 18944, 28 heads / 4 KV heads, vocab 152064,
  untied head, RoPE theta 1e6 with M-RoPE sections [16, 24, 24]; vision 32 blocks of width 1280,
  MLP 3420, 16 heads, window 112, full attention in blocks 7/15/23/31, merger to 3584;
- preset "tiny": the same architecture at a few hundred thousand parameters (CPU tests).

With random weights there is no tokenizer: the prompt is built as token ids of the right
lengths (chat-template text of `prompt_tokens` ids around the image's `<|image_pad|>` run, whose
length the real image processor computes), and every answer is forced to exactly
`answer_tokens` new tokens (min = max, greedy). The default answer length is an estimate of a
Qwen2.5-VL grounding reply `[{"bbox_2d": [x1, y1, x2, y2], "label": "..."}]` (its tokenizer
splits numbers into single digits); a local folder measures real replies instead.
"""
from __future__ import annotations

import re
from typing import Any

import torch
from PIL import Image

from lavida_bench.api import Request, Result, Stage, Trace
from lavida_bench.model.stages import StageClock
from lavida_bench.speed.random_model import default_dtype

PRESETS = ("tiny", "official")
# Qwen/Qwen2.5-VL-7B-Instruct config.json (text and vision geometry, see the module docstring).
OFFICIAL_TEXT = {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                 "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064, "rms_norm_eps": 1e-6,
                 "max_position_embeddings": 128000,
                 "rope_parameters": {"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1e6}}
OFFICIAL_VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                   "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                   "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2}
OFFICIAL_IDS = {"image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
                "vision_end_token_id": 151653}
TINY_TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 1100,
             "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 1e6}}
TINY_VISION = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
               "fullatt_block_indexes": [1]}
TINY_IDS = {"image_token_id": 1000, "video_token_id": 1003, "vision_start_token_id": 1001,
            "vision_end_token_id": 1002}
GROUND_PROMPT = "Locate {expression} in the image and output its bbox coordinates in JSON format."
BBOX = re.compile(r"\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\]")


def qwen_config(preset: str) -> Any:
    from transformers import Qwen2_5_VLConfig

    if preset not in PRESETS:
        raise ValueError(f"qwen preset {preset!r}: choose one of {', '.join(PRESETS)} (or give a local path)")
    text, vision, ids = (OFFICIAL_TEXT, OFFICIAL_VISION, OFFICIAL_IDS) if preset == "official" else (
        TINY_TEXT, TINY_VISION, TINY_IDS)
    bos, eos = (151643, 151645) if preset == "official" else (1005, 1004)
    return Qwen2_5_VLConfig(text_config={**text, "bos_token_id": bos, "eos_token_id": eos}, vision_config=dict(vision),
                            tie_word_embeddings=False, **ids)


class QwenBaseline:
    """Qwen2.5-VL for `understand` and `ground`, one generated token per forward pass (KV cache)."""

    name = "qwen2_5_vl_7b"
    capabilities = frozenset({"understand", "ground"})

    def __init__(self, model: Any, image_processor: Any, *, tokenizer: Any = None, label: str,
                 prompt_tokens: int = 30, answer_tokens: int = 30):
        self.model, self.image_processor, self.tokenizer = model, image_processor, tokenizer
        self.label, self.prompt_tokens, self.answer_tokens = label, prompt_tokens, answer_tokens

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def build(cls, *, preset: str = "tiny", path: str | None = None, device: str = "cpu",
              dtype: torch.dtype = torch.float32, **kwargs: Any) -> QwenBaseline:
        from transformers import Qwen2_5_VLForConditionalGeneration
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import (
            Qwen2VLImageProcessor,
        )

        if path is not None:
            from transformers import AutoProcessor

            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
                path, local_files_only=True, dtype=dtype, attn_implementation="sdpa").to(device).eval()
            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
            return cls(model, processor.image_processor, tokenizer=processor.tokenizer,
                       label=f"weights from {path}", **kwargs)
        config = qwen_config(preset)
        config._attn_implementation = "sdpa"
        with default_dtype(dtype), torch.device(device):
            model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
        return cls(model.eval().requires_grad_(False), Qwen2VLImageProcessor(),
                   label=f"random weights, {preset} architecture", **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def describe(self) -> dict[str, Any]:
        n = sum(p.numel() for p in self.model.parameters())
        return {"name": self.name, "weights": self.label, "parameters": n,
                "prompt_tokens": None if self.tokenizer else self.prompt_tokens,
                "answer_tokens": None if self.tokenizer else self.answer_tokens}

    # --- inputs ---------------------------------------------------------------------------------
    def _inputs(self, texts: list[str], images: list[Image.Image]) -> dict[str, Any]:
        vision = self.image_processor(images=images, return_tensors="pt")
        cfg = self.model.config
        merge = cfg.vision_config.spatial_merge_size ** 2
        counts = [int(t.prod()) // merge for t in vision["image_grid_thw"]]
        rows = [self._ids(text, n) for text, n in zip(texts, counts)]
        width = max(len(r) for r in rows)
        pad = cfg.text_config.eos_token_id if isinstance(cfg.text_config.eos_token_id, int) else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):  # left padding, as decoder-only generation wants
            ids[i, width - len(r):] = torch.tensor(r)
            mask[i, width - len(r):] = 1
        dev = self.device
        return {"input_ids": ids.to(dev), "attention_mask": mask.to(dev),
                "pixel_values": vision["pixel_values"].to(dev, self.model.dtype),
                "image_grid_thw": vision["image_grid_thw"].to(dev)}

    def _ids(self, text: str, n_image: int) -> list[int]:
        cfg = self.model.config
        image = [cfg.vision_start_token_id] + [cfg.image_token_id] * n_image + [cfg.vision_end_token_id]
        if self.tokenizer is not None:  # Qwen2.5-VL chat template, image first
            head = self.tokenizer("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n").input_ids
            tail = self.tokenizer(f"{text}<|im_end|>\n<|im_start|>assistant\n").input_ids
            return head + image + tail
        half = self.prompt_tokens // 2  # stand-in text ids; their values do not change the cost
        filler = list(range(10, 10 + self.prompt_tokens))
        return filler[:half] + image + filler[half:]

    # --- capabilities -----------------------------------------------------------------------------
    @torch.no_grad()
    def _generate(self, texts: list[str], images: list[Image.Image], max_new: int) -> tuple[list[str], int, float]:
        with StageClock(self.device) as clock:
            inputs = self._inputs(texts, images)
            forced = {} if self.tokenizer is not None else {"min_new_tokens": max_new}
            out = self.model.generate(**inputs, max_new_tokens=max_new, do_sample=False, **forced)
        new = out[:, inputs["input_ids"].shape[1]:]
        n_new = int(new.shape[1])
        texts_out = ([self.tokenizer.decode(t, skip_special_tokens=True) for t in new.tolist()]
                     if self.tokenizer is not None else [""] * len(texts))
        return texts_out, n_new, clock.seconds / len(texts)

    def ground(self, requests: list[Request]) -> list[Result]:
        texts = [GROUND_PROMPT.format(expression=r.prompt) for r in requests]
        images = [r.images[0].convert("RGB") for r in requests]
        max_new = self.answer_tokens if self.tokenizer is None else 4 * self.answer_tokens
        replies, nfe, secs = self._generate(texts, images, max_new)
        results = []
        for r, reply in zip(requests, replies):
            trace = Trace(nfe=nfe, steps=nfe, latency_s=secs, stages=[Stage("ground", nfe, secs)])
            trace.extra["reply"] = reply
            results.append(Result(boxes=self._boxes(reply, r.images[0]), trace=trace))
        return results

    def understand(self, requests: list[Request]) -> list[Result]:
        max_new = requests[0].options.max_new_tokens or self.answer_tokens
        replies, nfe, secs = self._generate([r.prompt for r in requests], [r.images[0] for r in requests], max_new)
        return [Result(text=t, trace=Trace(nfe=nfe, steps=nfe, latency_s=secs, stages=[Stage("understand", nfe, secs)]))
                for t in replies]

    def _boxes(self, reply: str, image: Image.Image) -> list[list[float]]:
        """Qwen2.5-VL answers in absolute pixels of the resized input; map back to the original."""
        m = BBOX.search(reply)
        if not m:
            return []
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        w, h = image.size
        rh, rw = smart_resize(h, w)
        x1, y1, x2, y2 = (float(v) for v in m.groups())
        return [[x1 * w / rw, y1 * h / rh, x2 * w / rw, y2 * h / rh]]

