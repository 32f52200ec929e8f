"""Every prompt string and sampler preset the release uses at inference, in one place.

Sources (official LaVida-O repository): `llava/eval/predict_t2i_edit.py:209-272` (layouts), :723-806
(text settings), :706-808 (planning and reflection); `llava/eval/1024_eval.yaml`, `1024_eval_edit.yaml`
and `eval_img/geneval.sh` (image presets, edit guidance); `llava/eval/predict_grounding.py:57-101`
(grounding prompt).
"""
from __future__ import annotations

from dataclasses import dataclass

from lavida_bench.model.sampling.image import ImageOptions
from lavida_bench.model.tokens import SYSTEM_PROMPT


@dataclass(frozen=True)
class ImageSettings:
    """One image-sampler preset (`model.image_settings`)."""

    cfg: float
    steps: int
    schedule: str
    shift: float
    policy: str
    temperature: float
    alg_temp: float
    dynamic_temperature: bool
    min_temperature: float
    schedule_temp: str
    score: str  # the SCORE micro-condition
    trailing_semicolon: bool
    image_cfg: float = 0.0  # editing only: guidance_scale_image
    edit_mode: int = 0

    def sampler(self, mask_id: int, steps: int | None = None, policy: str | None = None,
                temperature: float | None = None) -> ImageOptions:
        """The image-sampler options of this preset, with a request's overrides."""
        return ImageOptions(steps=steps or self.steps, schedule=self.schedule, shift=self.shift,
                            policy=policy or self.policy,
                            temperature=self.temperature if temperature is None else temperature,
                            alg_temp=self.alg_temp, dynamic_temperature=self.dynamic_temperature,
                            min_temperature=self.min_temperature, schedule_temp=self.schedule_temp,
                            mask_id=mask_id)


IMAGE_SETTINGS = {
    # llava/eval/1024_eval.yaml, used by the demo notebook.
    "demo_1024": ImageSettings(cfg=4.0, steps=64, schedule="shift", shift=5.0, policy="stratified",
                               temperature=0.8, alg_temp=5.0, dynamic_temperature=True, min_temperature=0.5,
                               schedule_temp="cosine2", score="7.110", trailing_semicolon=True),
    # eval_img/geneval.sh and dpg.sh command lines (their eval_hd.yaml override is not released).
    "geneval_script": ImageSettings(cfg=4.5, steps=64, schedule="shift", shift=7.0, policy="mmada",
                                    temperature=1.0, alg_temp=5.0, dynamic_temperature=True, min_temperature=0.2,
                                    schedule_temp="linear", score="6.711", trailing_semicolon=False),
}
# llava/eval/1024_eval_edit.yaml: three-way guidance, micro-conditioning forced empty (predict_t2i_edit.py:207-208).
EDIT_SETTINGS = ImageSettings(cfg=1.2, steps=64, schedule="shift", shift=5.0, policy="stratified", temperature=0.8,
                              alg_temp=5.0, dynamic_temperature=True, min_temperature=0.5, schedule_temp="cosine2",
                              score="", trailing_semicolon=False, image_cfg=1.4, edit_mode=0)


def micro_conditions(resolution: int, settings: ImageSettings) -> str:
    """`ORIGINAL WIDTH : w; ORIGINAL HEIGHT : h; TOP : 0; LEFT : 0; SCORE : s` (1024_eval.yaml `micro_cond`)."""
    text = (f"ORIGINAL WIDTH : {resolution}; ORIGINAL HEIGHT : {resolution}; TOP : 0; LEFT : 0; "
            f"SCORE : {settings.score}")
    return text + (";" if settings.trailing_semicolon else "")


def t2i_user(caption: str, micro: str) -> str:
    """Template `Generate an image with the caption:\\n <prompt>`, micro-conditions after a space."""
    return f"Generate an image with the caption:\n {caption} {micro}"


def feedback_suffix(feedbacks: list[str]) -> str:
    """Reflection: past failures, one `<image>` each (predict_t2i_edit.py:209-219; two spaces where the release has them).
    Numbering from 1 is inferred."""
    items = "\n".join(f"Generation {i}: <image>\n Feedback {i}: {text}" for i, text in enumerate(feedbacks, 1))
    return "  Please also consider past generations and their feedbacks. Do not repeat these errors " + items


def edit_user(instruction: str, source_tokens: str) -> str:
    return f"<image> {source_tokens}\n {instruction} "


def plan_t2i_user(caption: str, micro: str) -> str:
    """create_plan (predict_t2i_edit.py:706-737)."""
    return f"Generate an image with the caption: {caption} {micro}. Please first think and plan the layout in LOC format."


def plan_edit_user(instruction: str) -> str:
    """create_plan_edit (predict_t2i_edit.py:740-775)."""
    return f"<image>\n{instruction}. Please first think and plan the layout in LOC format."


def judge_user(caption: str) -> str:
    """get_feedback (predict_t2i_edit.py:777-808); a verdict passes iff it contains `is correct`."""
    return (f"<image>\nPlease evaluate this generated image based on the following prompt: {caption} "
            "Focus on text alignment and compositionality.")


PASS_PHRASE = "is correct"  # eval_img/eval.py:63-80


def understand_user(question: str, n_images: int) -> str:
    """lmms-eval's llava_llada adapter: `<image>\\n` before the question; several images are joined
    with spaces (`<image> <image>\\n`) and then encoded as padded single
    tiles without newlines (answers.py, SequenceBuilder.plain_features)."""
    return (" ".join(["<image>"] * n_images) + "\n" if n_images else "") + question


def grounding_prompt(expression: str, n_masks: int = 4) -> str:
    """The full RefCOCO prompt string, leading apostrophe included (predict_grounding.py:57-101):
    assistant pre-filled with masked LOC slots, no trailing generation header."""
    return ("'<|startoftext|><|start_header_id|>system<|end_header_id|>\n\n" + SYSTEM_PROMPT
            + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n<image>\n Please locate "
            + expression + " in this image. Give bounding boxes in LOC format.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n<LOC_BEGIN>" + "<|mdm_mask|>" * n_masks
            + "<LOC_END><|eot_id|>")


# Text decoding settings (predict_t2i_edit.py:723-735, 761-773, 794-806; eval/run.sh): (max_new_tokens, block_length, temperature)
PLAN_T2I = (64, 16, 0.5)
PLAN_EDIT = (64, 16, 0.0)
JUDGE = (32, 16, 0.0)
UNDERSTAND_DEFAULT_TOKENS = 256  # lmms-eval default; block = min(128, max_new_tokens)
N_FEEDBACK = 3  # at most three past failures condition a redraw
