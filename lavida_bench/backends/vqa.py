"""VQA models for DPG-Bench's yes/no questions.

The official model is mPLUG-large VQA from ModelScope
(`damo/mplug_visual-question-answering_coco_large_en`), run through
`modelscope.pipelines.pipeline(Tasks.visual_question_answering, model=...)` with the answer in
`result["text"]` (TencentQQGYLab/ELLA `dpg_bench/compute_dpg_bench.py`). DPG scores an answer 1 only
if it equals exactly "yes" (same file), so `mplug` returns the pipeline's text untouched; `blip` returns its decoded answer.

Backends: `mplug` (official, optional, lazy import of modelscope) and `blip` (a `transformers`
VQA model such as Salesforce/blip-vqa-base/-capfilt-large from a local folder). Their answers
differ, so DPG numbers from `blip` are not comparable to published ones.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image

from lavida_bench.backends.base import Backend
from lavida_bench.backends.local import optional_import, require_path, resolve_device

if TYPE_CHECKING:
    from lavida_bench.backends import BackendsConfig

MAX_ANSWER_TOKENS = 10  # yes/no answers are one or two tokens; leave room for short phrases


class BlipVQA(Backend):
    """`transformers` BlipForQuestionAnswering + its processor, from one local folder."""

    name: ClassVar[str] = "blip"
    path_key = "vqa_path"
    path_hint = "a local transformers BLIP VQA folder (e.g. Salesforce/blip-vqa-base saved with save_pretrained)"

    def __init__(self, model: Any, processor: Any, device: str):
        self.model, self.processor, self.device = model, processor, device

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> BlipVQA:
        from transformers import AutoProcessor, BlipForQuestionAnswering

        path = require_path(cfg.vqa_path, cls.path_key, cls.path_hint)
        device = resolve_device(cfg.device)
        model = BlipForQuestionAnswering.from_pretrained(path, local_files_only=True).to(device).eval()
        return cls(model, AutoProcessor.from_pretrained(path, local_files_only=True), device)

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, Any]:
        return {"implementation": "transformers BlipForQuestionAnswering, greedy",
                "max_new_tokens": MAX_ANSWER_TOKENS}

    def answer(self, image: Image.Image, question: str) -> str:
        import torch

        inputs = self.processor(images=image.convert("RGB"), text=question, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=MAX_ANSWER_TOKENS, do_sample=False)
        return self.processor.decode(out[0], skip_special_tokens=True).strip()


class MplugVQA(Backend):
    """The official mPLUG-large VQA through a ModelScope pipeline (optional dependency)."""

    name: ClassVar[str] = "mplug"
    path_key = "vqa_path"
    path_hint = "the local ModelScope folder mplug_visual-question-answering_coco_large_en"

    def __init__(self, pipe: Any):
        self.pipe = pipe

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> MplugVQA:
        path = require_path(cfg.vqa_path, cls.path_key, cls.path_hint)
        pipelines = optional_import("modelscope.pipelines", cls.name,
                                    "pip install modelscope (pin the version: DPG scores depend on it)")
        constant = optional_import("modelscope.utils.constant", cls.name, "pip install modelscope")
        pipe = pipelines.pipeline(constant.Tasks.visual_question_answering, model=str(path),
                                  device=resolve_device(cfg.device))
        return cls(pipe)

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, Any]:
        return {"implementation": "modelscope pipeline visual_question_answering"}

    def answer(self, image: Image.Image, question: str) -> str:
        result = self.pipe({"image": image.convert("RGB"), "text": question})
        text = result.get("text") if isinstance(result, dict) else None
        if not isinstance(text, str):
            raise TypeError(f"mPLUG pipeline returned no 'text' string: {result!r}")
        return text  # untouched: DPG compares with "yes" exactly
