"""Lavida-O as an lmms-eval model: `python -m lmms_eval --model lavida_o --model_args pretrained=DIR`.

lmms-eval 0.7.3 finds external models through the `lmms_eval.models` entry-point group
(pyproject.toml points it at `manifests` below); the `@register_model` decorator alone is not
enough in that version (lmms-eval 0.7.3 `lmms_eval/models/__init__.py` builds its registry from
the built-in list and that entry-point group). lmms-eval imports this
module while it builds its model registry and swallows any import error into a warning that hides
every plugin, so this module imports nothing heavy at the top: the model code is imported when a
model is built.

The class is a thin adapter over `LavidaPipeline.understand`; it reproduces the release's own
lmms-eval wrapper (adobe-research/LaVida-O `eval/lmms_eval/models/llava_llada.py`, sampler in
`llava/model/language_model/llada/generate.py`):
one image placeholder per image before the question, prefix-LM decoding with
`block_length = min(128, max_new_tokens)`, temperature forced to 0, `max_new_tokens` 256 unless
the task sets it, the answer decoded with special tokens skipped, `lstrip('!')`, `strip()`.
Weights load only from a local folder; nothing reaches a hub.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest

log = logging.getLogger(__name__)

MODEL_ID = "lavida_o"
# The release's lmms-eval runs (eval/run.sh) default to 256 new tokens unless the task sets it
# (LaVida-O `eval/run.sh`).
DEFAULT_MAX_NEW_TOKENS = 256
MAX_BLOCK_LENGTH = 128  # block_length = min(128, max_new_tokens), LaVida-O `llava/model/language_model/llada/generate.py`
DTYPES = ("auto", "bfloat16", "float16", "float32")
# Sampling settings the release's wrapper overrides (temperature forced to 0, greedy decoding,
# LaVida-O `eval/lmms_eval/models/llava_llada.py`): accepted from a task, never used. A value that asks for sampling is
# logged once so a user sees that it had no effect.
IGNORED_GEN_KWARGS = {"temperature": 0, "do_sample": False, "top_p": None, "top_k": None,
                      "num_beams": 1, "image_aspect_ratio": None}
IMAGE_MARKER = "<image>"  # lmms-eval llava convention; the pipeline inserts its own markers


def manifests() -> list[ModelManifest]:
    """Entry point `lmms_eval.models: lavida_o` (pyproject.toml)."""
    return [ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.LavidaO")]


@dataclass(frozen=True)
class GenSettings:
    """What one request asks of the decoder; requests with equal settings share a batch."""

    max_new_tokens: int
    until: tuple[str, ...]


def parse_gen_kwargs(gen_kwargs: dict[str, Any] | None, default_max_new_tokens: int,
                     where: str) -> GenSettings:
    """Validate a task's `generation_kwargs` (never mutating the task's dict).

    `until` may be a string or a list of strings; `max_new_tokens` must be at most 128 or a
    multiple of 128, because the answer is decoded in blocks of min(128, max_new_tokens) tokens
    (LaVida-O `llava/model/language_model/llada/generate.py`: "must divide").
    """
    kwargs = dict(gen_kwargs or {})
    until = kwargs.pop("until", None)
    if until is None:
        until_t: tuple[str, ...] = ()
    elif isinstance(until, str):
        until_t = (until,)
    elif isinstance(until, (list, tuple)) and all(isinstance(u, str) for u in until):
        until_t = tuple(until)
    else:
        raise ValueError(f"{where}: generation_kwargs 'until' must be a string or a list of strings, "
                         f"got {until!r}")
    # The release's runs pass `--gen_kwargs prefix_lm=True` (LaVida-O `eval/run.sh`); the pipeline
    # always decodes that way, so only the other value is refused.
    prefix_lm = kwargs.pop("prefix_lm", True)
    if prefix_lm not in (True, "True", "true"):
        raise ValueError(f"{where}: prefix_lm={prefix_lm!r}: only prefix-LM decoding (the release's evaluation "
                         f"setting) is implemented")
    raw = kwargs.pop("max_new_tokens", None)
    max_new_tokens = default_max_new_tokens if raw is None else positive_int(raw, f"{where}: max_new_tokens")
    check_block_divisible(max_new_tokens, where)
    for key in list(kwargs):
        if key in IGNORED_GEN_KWARGS:
            value = kwargs.pop(key)
            if value not in (IGNORED_GEN_KWARGS[key], None, 0, False):
                warn_once(f"{where}: generation_kwargs {key}={value!r} ignored: Lavida-O's lmms-eval "
                          f"wrapper always decodes greedily (temperature 0)")
    if kwargs:
        raise ValueError(f"{where}: unsupported generation_kwargs {sorted(kwargs)} (lavida_o understands "
                         f"max_new_tokens, until and prefix_lm=True; {sorted(IGNORED_GEN_KWARGS)} are accepted and "
                         f"ignored)")
    return GenSettings(max_new_tokens, until_t)


def check_block_divisible(max_new_tokens: int, where: str) -> None:
    block = min(MAX_BLOCK_LENGTH, max_new_tokens)
    if max_new_tokens % block:
        raise ValueError(f"{where}: max_new_tokens={max_new_tokens} must be <= {MAX_BLOCK_LENGTH} or a multiple "
                         f"of {MAX_BLOCK_LENGTH} (answers are decoded in blocks of min(128, max_new_tokens))")


def positive_int(value: Any, what: str) -> int:
    """An int from a model_args/gen_kwargs value (lmms-eval passes model_args as strings)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    else:
        raise ValueError(f"{what}: expected a positive integer, got {value!r}")
    if number < 1:
        raise ValueError(f"{what}: expected a positive integer, got {value!r}")
    return number


_warned: set[str] = set()


def warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def truncate_at(text: str, until: Iterable[str]) -> str:
    """Cut the answer at the first stop string (lm-eval's `until` rule), then strip whitespace."""
    for stop in until:
        if stop:
            text = text.split(stop)[0]
    return text.strip()


def request_seed(task: str, split: str, doc_id: Any) -> int:
    """A seed from the document's identity, so an answer never depends on batch or order (decoding
    is greedy, so it only matters if a future option turns sampling on)."""
    digest = hashlib.sha256(f"lmms\x1f{task}\x1f{split}\x1f{doc_id}".encode()).hexdigest()
    return int(digest[:15], 16)


def as_images(visuals: Any, where: str) -> list[Any]:
    """The PIL images of one document; lavida_o understands still images only."""
    from PIL import Image

    if visuals is None:
        return []
    items = visuals if isinstance(visuals, (list, tuple)) else [visuals]
    images = []
    for k, item in enumerate(items):
        if not isinstance(item, Image.Image):
            raise TypeError(f"{where}: visual {k} is a {type(item).__name__}; lavida_o takes still images "
                             f"(PIL) only, not video, audio or file paths")
        images.append(item.convert("RGB"))
    return images


def batches(order: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(order), size):
        yield list(order[start:start + size])


class LavidaO(lmms):
    """lmms-eval simple model wrapping `LavidaPipeline` (understanding only).

    model_args: `pretrained` (local checkpoint folder, required), `device` (auto | cpu | cuda |
    cuda:N), `dtype` (auto = bfloat16 on CUDA, float32 on CPU | bfloat16 | float16 | float32),
    `max_new_tokens` (used when a task does not set it; default 256), `attn_implementation`
    (sdpa | eager), `batch_size` (also lmms-eval's --batch_size).
    """

    is_simple = True

    def __init__(self, pretrained: str | None = None, device: str | None = None, dtype: str = "auto",
                 max_new_tokens: int | str = DEFAULT_MAX_NEW_TOKENS, batch_size: int | str | None = 1,
                 attn_implementation: str = "sdpa", max_batch_size: Any = None, **unknown: Any) -> None:
        super().__init__()
        if unknown:
            raise TypeError(f"lavida_o: unknown model_args {sorted(unknown)} (known: pretrained, device, dtype, "
                            f"max_new_tokens, batch_size, attn_implementation); weights load from a local "
                            f"folder only, so hub options such as trust_remote_code do not apply")
        self._configure(batch_size, max_new_tokens)
        self.pipeline = load_pipeline(pretrained, device or "auto", dtype, attn_implementation)

    @classmethod
    def from_pipeline(cls, pipeline: Any, batch_size: int = 1,
                      max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> LavidaO:
        """Wrap an already built pipeline (or any model with `understand`), e.g. for
        `lmms_eval.evaluator.simple_evaluate(model=...)` or tests."""
        self = cls.__new__(cls)
        lmms.__init__(self)
        self._configure(batch_size, max_new_tokens)
        self.pipeline = pipeline
        return self

    def _configure(self, batch_size: Any, max_new_tokens: Any) -> None:
        self.batch_size = positive_int(1 if batch_size in (None, "") else batch_size, "lavida_o: batch_size")
        self.max_new_tokens = positive_int(max_new_tokens, "lavida_o: max_new_tokens")
        check_block_divisible(self.max_new_tokens, "lavida_o model_args")
        check_single_process()

    # -- lmms-eval API ------------------------------------------------------------------------
    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Answers in request order; requests are batched by equal decoding settings."""
        from tqdm import tqdm

        prepared = [self._prepare(req) for req in requests]
        groups: dict[GenSettings, list[int]] = {}
        for i, (_, settings) in enumerate(prepared):
            groups.setdefault(settings, []).append(i)
        answers: list[str | None] = [None] * len(requests)
        bar = tqdm(total=len(requests), disable=self.rank != 0, desc="Model Responding")
        for settings, members in groups.items():
            for chunk in batches(members, self.batch_size):
                results = self.pipeline.understand([prepared[i][0] for i in chunk])
                for i, result in zip(chunk, results):
                    answers[i] = truncate_at(result.text or "", settings.until)
                    context, gen_kwargs = requests[i].args[:2]
                    self.cache_hook.add_partial("generate_until", (context, gen_kwargs), answers[i])
                bar.update(len(chunk))
        bar.close()
        return [a if a is not None else "" for a in answers]

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError(
            "lavida_o does not implement loglikelihood: Lavida-O is a masked-diffusion model without "
            "left-to-right token likelihoods; run generate_until tasks (multiple-choice tasks in "
            "lmms-eval's generative form, e.g. mmmu_val, chartqa)")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError("lavida_o does not implement multi-round generation; run single-turn "
                                  "generate_until tasks")

    # -- helpers ------------------------------------------------------------------------------
    def _prepare(self, req: Instance) -> tuple[Any, GenSettings]:
        """One lmms-eval request -> one pipeline `Request` and its decoding settings."""
        from lavida_bench.api import Options, Request

        context, gen_kwargs, doc_to_visual, doc_id, task, split = req.args[:6]
        where = f"lmms-eval task {task!r} split {split!r} doc {doc_id}"
        if not isinstance(context, str):
            raise TypeError(f"{where}: context must be a string, got {type(context).__name__}")
        if IMAGE_MARKER in context:
            raise ValueError(f"{where}: the prompt already holds {IMAGE_MARKER!r} markers (interleaved format); "
                             f"lavida_o places one image marker per image before the question, as the "
                             f"release's wrapper does, and does not support interleaved prompts")
        settings = parse_gen_kwargs(gen_kwargs, self.max_new_tokens, where)
        doc = self.task_dict[task][split][doc_id]
        images = as_images(doc_to_visual(doc) if callable(doc_to_visual) else None, where)
        request = Request(id=f"{task}/{split}/{doc_id}", capability="understand", prompt=context, images=images,
                          options=Options(max_new_tokens=settings.max_new_tokens, temperature=0.0),
                          seed=request_seed(task, split, doc_id))
        return request, settings


def check_single_process() -> None:
    """lmms-eval shards documents by the model's rank; this adapter runs one process (use
    `lavida-bench run` under torchrun for multi-GPU runs)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise RuntimeError("lavida_o: the lmms-eval adapter runs in one process; launch lmms-eval without "
                           "accelerate/torchrun, or use `lavida-bench run` for multi-GPU runs")


def load_pipeline(pretrained: str | None, device: str, dtype: str, attn_implementation: str) -> Any:
    """Build the pipeline from a LOCAL checkpoint folder; a hub id or missing folder is an error."""
    from lavida_bench.config import ModelConfig
    from lavida_bench.model.pipeline import LavidaPipeline

    if not pretrained:
        raise ValueError("lavida_o: model_args pretrained=DIR is required (a local folder in the release layout: "
                         "config.json, safetensors shards + index, tokenizer files, vqvae/)")
    folder = Path(pretrained).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"lavida_o: pretrained={pretrained!r} is not a local folder. Nothing is downloaded: "
                                f"put the release (jacklishufan/LaViDa-O-v1.0) in a local folder and name it")
    if dtype not in DTYPES:
        raise ValueError(f"lavida_o: dtype={dtype!r}: choose one of {', '.join(DTYPES)}")
    if attn_implementation not in ("sdpa", "eager"):
        raise ValueError(f"lavida_o: attn_implementation={attn_implementation!r}: choose sdpa or eager")
    if not (device == "auto" or device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"lavida_o: device={device!r}: choose auto, cpu, cuda or cuda:N")
    cfg = ModelConfig(checkpoint=str(folder), device=device, dtype=dtype, attn_implementation=attn_implementation)
    return LavidaPipeline.from_config(cfg)


__all__ = ["MODEL_ID", "LavidaO", "manifests", "parse_gen_kwargs", "truncate_at"]
