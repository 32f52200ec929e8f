"""Request plumbing shared by the four generation benchmarks (GenEval, DPG-Bench, FID-30k,
ImgEdit): one sample per (prompt, image index), and request options merged from the variant."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from PIL import Image

from lavida_bench.api import Capability, Request, Sample, Variant


def image_samples(prompt_id: str, data: Mapping[str, Any], images_per_prompt: int) -> list[Sample]:
    """One sample per (prompt, image index), ids `<prompt_id>/<k>`: each image is resumable on
    its own, and raising `images_per_prompt` later keeps the images already made."""
    return [Sample(f"{prompt_id}/{k}", {**data, "image_index": k}) for k in range(images_per_prompt)]


def generation_request(sample: Sample, capability: Capability, prompt: str, variant: Variant,
                       resolution: int | None, images: Sequence[Image.Image] = (),
                       caption: str | None = None) -> Request:
    """The variant's options (plan, reflect_rounds, ...) with the task's resolution merged in."""
    return Request(sample.id, capability, prompt, images=list(images),
                   options=variant.options.merged(resolution=resolution), caption=caption)
