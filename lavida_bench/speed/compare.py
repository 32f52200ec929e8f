"""Side-by-side comparisons, each measured in the same process and run: an optimisation against
its plain path (with an equal-output check), and Lavida-O against its speed baselines.

speedup = plain (or baseline) median time / optimised (or Lavida-O) median time. Each entry also
carries the speedup the floor predicts (ratio of the two workloads' floors), the figure the
optimisation was expected to meet.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from lavida_bench.api import Result
from lavida_bench.speed.baselines import AutoregressiveLavida
from lavida_bench.speed.bench import Bench
from lavida_bench.speed.cases import Case, requests_for
from lavida_bench.speed.floor import without_prompt_recompute, workload_floor
from lavida_bench.speed.measure import Measurement
from lavida_bench.speed.paths import (
    CachedImagePrompt,
    RecomputePrefix,
    SplitGuidance,
    captured_codes,
    compiled_steps,
    image_only,
    swapped_network,
)

UNDERSTAND = Case("understand", "understand", "understand", "tokens")
GROUND1 = Case("ground1", "ground1", "ground", "boxes")


def generate_case(b: Bench) -> Case:
    return Case(f"generate@{b.cfg.resolutions[0]}", "generate", "generate", "images", b.cfg.resolutions[0])


def same_images(a: list[Result], b: list[Result]) -> bool:
    return all(np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, b)) and len(a) == len(b)


def same_codes(a: Measurement, b: Measurement) -> bool:
    ca, cb = a.recording.codes if a.recording else [], b.recording.codes if b.recording else []
    return len(ca) == len(cb) > 0 and all(bool((x == y).all()) for x, y in zip(ca, cb))


def pair(b: Bench, name: str, plain: Measurement, fast: Measurement, units: str, per_sample: float,
         equal: bool | None, note: str, labels: tuple[str, str] = ("plain", "optimized")) -> dict[str, Any]:
    rows = {labels[0]: b.row(plain, units, per_sample), labels[1]: b.row(fast, units, per_sample)}
    out: dict[str, Any] = {"name": name, "labels": list(labels), **rows,
                           "speedup": plain.median_s / fast.median_s if fast.median_s > 0 else None,
                           "equal_outputs": equal, "note": note}
    floors = [rows[k].get("floor_s") for k in labels]
    out["predicted_speedup"] = floors[0] / floors[1] if all(floors) else None
    return out


def prefix_cache(b: Bench) -> dict[str, Any]:
    reqs = requests_for(UNDERSTAND, 1, b.cfg)
    fast = b.run(b.pipe.understand, reqs)
    with swapped_network(b.pipe, RecomputePrefix(b.network)):
        plain = b.run(b.pipe.understand, reqs)
    equal = [r.text for r in plain.probe + plain.last] == [r.text for r in fast.probe + fast.last]
    return pair(b, "prefix cache for text decoding (off = prompt re-encoded every step)", plain, fast, "tokens",
                float(b.cfg.understand_tokens), equal, "same math (prefix-LM, §6.1): tokens must be identical",
                ("cache_off", "cache_on"))


def image_only_rows(b: Bench) -> dict[str, Any]:
    reqs = requests_for(generate_case(b), 1, b.cfg)
    with image_only(b.pipe, False):
        plain = b.run(b.pipe.generate, reqs)
    with image_only(b.pipe, True):
        fast = b.run(b.pipe.generate, reqs)
    out = pair(b, f"image_only for {b.cfg.image_steps}-step generation (skip text rows after the joint blocks)",
               plain, fast, "images", 1.0, same_codes(plain, fast) and same_images(plain.last, fast.last),
               "text rows cannot reach the image after the joint blocks (§3.2, IGNORE_TEXT_LOSS)",
               ("all_rows", "image_only"))
    out["prompt_cache"] = prompt_cache_bound(b, fast)
    return out


def prompt_cache_bound(b: Bench, m: Measurement) -> dict[str, Any]:
    """What caching the conditioning prompt across the steps would save, and why it is not done."""
    note = ("not applied: in the joint blocks every prompt row attends to the image rows, which change at "
            "every step, so the prompt's keys/values change too (§3.2); a cache would change the images")
    if m.recording is None or b.rates is None:
        return {"applied": False, "note": note}
    cfg = b.pipe.ck.config
    full = workload_floor(cfg, m.recording.passes, b.dtype_bytes, b.rates)
    cached = workload_floor(cfg, without_prompt_recompute(m.recording.passes), b.dtype_bytes, b.rates)
    return {"applied": False, "floor_s": full, "floor_with_prompt_cache_s": cached,
            "would_save_fraction": 1 - cached / full if full else None, "note": note}


def image_prompt_cache(b: Bench) -> dict[str, Any]:
    """Prompt cache on vs off for image generation, measured side by side. The cached path is an
    approximation (the prompt stops seeing the image tokens), so outputs are compared, not assumed."""
    reqs = requests_for(generate_case(b), 1, b.cfg)
    with image_only(b.pipe, False):
        plain = b.run(b.pipe.generate, reqs)
        with swapped_network(b.pipe, CachedImagePrompt(b.network)):
            fast = b.run(b.pipe.generate, reqs)
    ca, cb = (m.recording.codes if m.recording else [] for m in (plain, fast))
    agree = (float(np.mean([float((x == y).float().mean()) for x, y in zip(ca, cb)])) if ca and cb else None)
    out = pair(b, f"prompt cache for {b.cfg.image_steps}-step generation (APPROXIMATE: not the release's math)",
               plain, fast, "images", 1.0, same_codes(plain, fast),
               "the prompt no longer attends to the image tokens in the joint blocks (§3.2), so images change",
               ("cache_off", "cache_on_approx"))
    out["code_agreement"] = agree
    return out


def cfg_batching(b: Bench) -> dict[str, Any]:
    reqs = requests_for(generate_case(b), 1, b.cfg)
    fast = b.run(b.pipe.generate, reqs)
    with swapped_network(b.pipe, SplitGuidance(b.network, ways=2)):
        plain = b.run(b.pipe.generate, reqs)
    return pair(b, "CFG rows batched into one forward pass per step (off = cond and uncond in two passes)",
                plain, fast, "images", 1.0, same_codes(plain, fast) and same_images(plain.last, fast.last),
                "same rows, same math (§6.2): codes must be identical", ("unbatched", "batched"))


def compiled_step(b: Bench) -> dict[str, Any]:
    """Eager vs compiled denoising step (`torch.compile(fullgraph=True)` of network + guidance +
    sampler transition). Passes are not recorded here (a recording hook inside the compiled
    step would break the graph), so there is no floor; codes are captured at the drawer."""
    reqs = requests_for(generate_case(b), 1, b.cfg)
    with captured_codes(b.pipe) as eager_codes:
        plain = b.run(b.pipe.generate, reqs, record=False)
    with compiled_steps(b.pipe), captured_codes(b.pipe) as compiled_codes:
        start = time.perf_counter()
        b.pipe.generate(reqs)  # the first call compiles; its time is reported, not measured
        compile_s = time.perf_counter() - start
        fast = b.run(b.pipe.generate, reqs, record=False)
    # every compiled call (the compiling one included) must draw the eager run's codes
    equal = bool(eager_codes) and len(compiled_codes) > 1 and all(torch.equal(eager_codes[0], y) for y in compiled_codes)
    out = pair(b, f"compiled denoising step for {b.cfg.image_steps}-step generation (torch.compile, fullgraph)",
               plain, fast, "images", 1.0, equal and same_images(plain.last, fast.last),
               "same math: codes must be identical", ("eager", "compiled"))
    out["compile_s"] = compile_s
    return out


def compiled_text_step(b: Bench) -> dict[str, Any]:
    """Eager vs compiled network pass of the understanding answer's steps (text_decoder.py
    `compile_pass`). The compiled calls are not recorded (a recording hook would break the
    graph); they run the eager run's passes, so both rows get the eager recording's floor."""
    reqs = requests_for(UNDERSTAND, 1, b.cfg)
    plain = b.run(b.pipe.understand, reqs)
    with compiled_steps(b.pipe):
        start = time.perf_counter()
        compiling = b.pipe.understand(reqs)  # the first call compiles; its time is reported, not measured
        compile_s = time.perf_counter() - start
        fast = dataclasses.replace(b.run(b.pipe.understand, reqs, record=False), recording=plain.recording)
    texts = [r.text for r in plain.last]
    equal = texts == [r.text for r in compiling] == [r.text for r in fast.last] and bool(texts)
    out = pair(b, f"compiled network pass for a {b.cfg.understand_tokens}-token answer (torch.compile, fullgraph)",
               plain, fast, "tokens", float(b.cfg.understand_tokens), equal,
               "same math: answers must be identical", ("eager", "compiled"))
    out["compile_s"] = compile_s
    return out


def versus(b: Bench, name: str, case: Case, ours: Callable, baseline: Callable, per_sample: float,
           batch: int, record_baseline: bool, note: str, label: str) -> dict[str, Any]:
    reqs = requests_for(case, batch, b.cfg)
    fast = b.run(ours, reqs)
    plain = b.run(baseline, reqs, record=record_baseline)
    out = pair(b, name, plain, fast, case.units, per_sample, None, note, (label, "lavida_o"))
    out["batch"] = batch
    return out


def ground_vs_ar(b: Bench) -> list[dict[str, Any]]:
    ar = AutoregressiveLavida(b.pipe)
    return [versus(b, "one-step grounding vs the same network decoding the 4 coordinates autoregressively",
                   GROUND1, b.pipe.ground, ar.ground, 1.0, n, True,
                   "same image, expression and output count; AR = one token per pass with a KV cache",
                   "autoregressive") for n in b.cfg.batch_sizes]


def understand_vs_ar(b: Bench) -> list[dict[str, Any]]:
    ar = AutoregressiveLavida(b.pipe)
    return [versus(b, f"masked-diffusion answer vs the same network decoding {b.cfg.understand_tokens} tokens "
                   "autoregressively", UNDERSTAND, b.pipe.understand, ar.understand, float(b.cfg.understand_tokens),
                   1, True, "masked diffusion reveals one token per step here (block = steps, §6.1)",
                   "autoregressive")]


def qwen_ground(b: Bench) -> list[dict[str, Any]] | dict[str, Any]:
    from lavida_bench.speed.qwen import QwenBaseline

    cfg = b.cfg
    if cfg.qwen_path is None and cfg.qwen_preset == "none":
        return {"available": False, "note": "speed.qwen_preset=none"}
    try:
        qwen = QwenBaseline.build(preset=cfg.qwen_preset, path=cfg.qwen_path, device=str(b.device), dtype=b.dtype,
                                  prompt_tokens=cfg.qwen_prompt_tokens, answer_tokens=cfg.qwen_answer_tokens)
    except (ImportError, OSError, ValueError) as err:
        return {"available": False, "note": f"Qwen2.5-VL could not be built: {type(err).__name__}: {err}"}
    rows = [versus(b, "Qwen2.5-VL grounding vs Lavida-O one-step grounding", GROUND1, b.pipe.ground, qwen.ground,
                   1.0, n, False, f"Qwen2.5-VL: {qwen.label}", "qwen2_5_vl") for n in cfg.batch_sizes]
    for r in rows:
        r["baseline"] = qwen.describe()
    del qwen
    return rows


COMPARISONS: dict[str, Callable[[Bench], Any]] = {
    "prefix_cache": prefix_cache,
    "image_only": image_only_rows,
    "image_prompt_cache": image_prompt_cache,
    "cfg_batching": cfg_batching,
    "compile": compiled_step,
    "compile_text": compiled_text_step,
    "ground_vs_ar": ground_vs_ar,
    "understand_vs_ar": understand_vs_ar,
    "qwen_ground": qwen_ground,
}
