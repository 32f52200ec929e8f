"""Lavida-O as the harness calls it: batched `understand / ground / generate / edit`.

A facade over parts with one job each (the release's inference: LaVida-O `llava/eval/predict_t2i_edit.py`,
`llava/eval/predict_grounding.py`, `llava/model/language_model/llada/generate.py`):

- text_decoder.TextDecoder: prefix-LM masked-diffusion text decoding (the prompt cached once);
- drawer.ImageDrawer: prompt rows, classifier-free guidance with all guidance rows of a batch in
  ONE forward pass per step, and the denoising loop (optionally compiled);
- reflection.ReflectionLoop: planning (a layout in LOC tokens first) and self-reflection (the
  understanding branch judges, failures condition redraws), one state object per request;
- answers.Answers: understanding, grounding (four masked LOC slots in `steps` passes) and
  interleaved answers.

Every request gets its own random generators seeded from `Request.seed` and the stage, so a
result does not depend on batch size, batch position or which other requests share the batch.
Traces record each stage's forward passes and device-synchronised wall time (a batched stage's
time is shared equally by its requests).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lavida_bench.model.answers import Answers
from lavida_bench.model.checkpoint import Checkpoint, load_checkpoint
from lavida_bench.model.devices import cpu_threads, resolve_device, resolve_dtype
from lavida_bench.model.drawer import ImageDrawer
from lavida_bench.model.parts import ModelParts
from lavida_bench.model.reflection import ReflectionLoop
from lavida_bench.model.text_decoder import TextDecoder
from lavida_bench.api import Request, Result


class LavidaPipeline:
    name = "lavida_o"
    capabilities = frozenset({"understand", "ground", "generate", "edit"})

    def __init__(self, checkpoint: Checkpoint, *, image_settings: str = "demo_1024", resolution: int = 1024,
                 grounding_frame: str = "pad_square", dtype: torch.dtype | None = None,
                 image_only: bool = True, cpu_threads: int | None = None, prefix_lm: bool = True):
        settings: dict[str, Any] = {"settings_name": image_settings, "resolution": resolution,
                                    "grounding_frame": grounding_frame, "image_only": image_only,
                                    "prefix_lm": prefix_lm}
        if dtype is not None:
            settings["dtype"] = dtype
        self.parts = ModelParts.of(checkpoint, **settings)
        self.text = TextDecoder(self.parts)
        self.drawer = ImageDrawer(self.parts)
        self.reflection = ReflectionLoop(self.parts, self.text, self.drawer)
        self.answers = Answers(self.parts, self.text, self.drawer)
        self.cpu_threads = cpu_threads  # applied around each call only: no process-wide setting

    @classmethod
    def from_config(cls, cfg: Any) -> "LavidaPipeline":
        """Build from the harness's ModelConfig (checkpoint folder, device, dtype, settings)."""
        device = resolve_device(cfg.device)
        dtype = resolve_dtype(cfg.dtype, device)
        ck = load_checkpoint(cfg.checkpoint, device=device, dtype=dtype, attn_implementation=cfg.attn_implementation,
                             full_weights_hash=cfg.full_weights_hash)
        return cls(ck, image_settings=cfg.image_settings, resolution=cfg.resolution,
                   grounding_frame=cfg.grounding_frame, dtype=dtype,
                   cpu_threads=cfg.cpu_threads if device == "cpu" else None, prefix_lm=cfg.prefix_lm)

    # --- what callers read ------------------------------------------------------------------
    @property
    def ck(self) -> Checkpoint:
        return self.parts.ck

    @property
    def net(self) -> Any:
        return self.parts.net

    @property
    def builder(self) -> Any:
        return self.parts.builder

    @property
    def ids(self) -> Any:
        return self.parts.ids

    @property
    def tokenizer(self) -> Any:
        return self.parts.tokenizer

    @property
    def device(self) -> torch.device:
        return self.parts.device

    def describe(self) -> dict[str, Any]:
        p, folder = self.parts, Path(self.parts.ck.folder)
        return {"name": self.name, "checkpoint": str(folder), "fingerprint": p.ck.fingerprint,
                "provenance": p.ck.provenance,
                "config": p.ck.config.summary(), "image_settings": p.settings_name,
                "sampler": p.settings.__dict__, "resolution": p.resolution,
                "grounding_frame": p.grounding_frame, "prefix_lm": p.prefix_lm, "dtype": str(p.dtype),
                "device": str(p.device),
                "attn_implementation": p.net.attn_implementation}

    # --- capabilities -----------------------------------------------------------------------
    @torch.no_grad()
    def understand(self, requests: list[Request]) -> list[Result]:
        with cpu_threads(self.cpu_threads):
            return self.answers.understand(requests)

    @torch.no_grad()
    def ground(self, requests: list[Request]) -> list[Result]:
        with cpu_threads(self.cpu_threads):
            return self.answers.ground(requests)

    @torch.no_grad()
    def generate(self, requests: list[Request]) -> list[Result]:
        with cpu_threads(self.cpu_threads):
            return self.reflection.run(requests, edit=False)

    @torch.no_grad()
    def edit(self, requests: list[Request]) -> list[Result]:
        with cpu_threads(self.cpu_threads):
            return self.reflection.run(requests, edit=True)

    @torch.no_grad()
    def interleave(self, requests: list[Request], max_new_tokens: int = 64) -> list[Result]:
        with cpu_threads(self.cpu_threads):
            return self.answers.interleave(requests, max_new_tokens)
