"""`lavida-bench speed`: every case at every batch size, the comparisons, the floor, the overhead.

Writes `speed.json` (everything, machine-readable) and `speed.md` (the tables) into the output
folder. Weights are random unless `model.checkpoint` names the release (latency does not depend
on weight values); the output says which, and which model size ran.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from lavida_bench.api import ConfigError
from lavida_bench.config import RunConfig, SpeedConfig, to_dict
from lavida_bench.model import devices
from lavida_bench.model.devices import cpu_threads, resolve_device
from lavida_bench.model.params import count_parameters
from lavida_bench.model.pipeline import LavidaPipeline
from lavida_bench.speed.bench import Bench
from lavida_bench.speed.cases import expand_cases, requests_for, units_per_sample
from lavida_bench.speed.compare import COMPARISONS
from lavida_bench.speed.harness import harness_overhead, scoring_throughput
from lavida_bench.speed.predict import official_predictions
from lavida_bench.speed.random_model import random_pipeline
from lavida_bench.speed.report import write_markdown
from lavida_bench.timing import measure_device

KNOWN_COMPARISONS = (*COMPARISONS, "harness", "scoring")


def resolve_dtype(name: str, device: str) -> torch.dtype:
    try:
        return devices.resolve_dtype(name, device)
    except ValueError as err:
        raise ConfigError([f"model.dtype: {err}"]) from err


def build_pipeline(run: RunConfig, device: str, dtype: torch.dtype) -> tuple[LavidaPipeline, str]:
    cfg = run.speed
    if run.model.checkpoint:
        return LavidaPipeline.from_config(run.model), f"released weights from {run.model.checkpoint}"
    pipe = random_pipeline(cfg.model_preset, device=device, dtype=dtype, seed=run.seed,
                           resolution=cfg.resolutions[0], image_settings=run.model.image_settings,
                           attn_implementation=run.model.attn_implementation)
    return pipe, f"random weights (seed {run.seed}), {cfg.model_preset} size"


def machine(device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
                           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "platform": platform.platform()}
    if hasattr(os, "getloadavg"):
        out["load_average_1m"] = os.getloadavg()[0]
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def check(cfg: SpeedConfig) -> None:
    unknown = [c for c in cfg.comparisons if c not in KNOWN_COMPARISONS]
    problems = [f"speed.comparisons: unknown {unknown} (available: {', '.join(KNOWN_COMPARISONS)})"] if unknown else []
    if not cfg.batch_sizes or min(cfg.batch_sizes) < 1:
        problems.append(f"speed.batch_sizes must be positive integers, got {cfg.batch_sizes}")
    if not cfg.resolutions:
        problems.append("speed.resolutions must name at least one resolution")
    if cfg.repeats < 1:
        problems.append(f"speed.repeats must be >= 1, got {cfg.repeats}")
    if len(cfg.input_size) != 2:
        problems.append(f"speed.input_size must be [width, height], got {cfg.input_size}")
    try:
        expand_cases(cfg)
    except ValueError as err:
        problems.append(str(err))
    if problems:
        raise ConfigError(problems, "speed config")


def measure_cases(bench: Bench) -> list[dict[str, Any]]:
    rows = []
    for case in expand_cases(bench.cfg):
        for batch in bench.cfg.batch_sizes:
            fn = getattr(bench.pipe, case.capability)
            m = bench.run(fn, requests_for(case, batch, bench.cfg))
            row = {"case": case.name, "capability": case.capability, "resolution": case.resolution,
                   **bench.row(m, case.units, units_per_sample(case, bench.cfg))}
            if case.kind == "plan_reflect":
                row["stages"] = stage_table([m.last])
            rows.append(row)
    return rows


def stage_table(runs: list[list[Any]]) -> dict[str, dict[str, float]]:
    """Per stage (plan, draw1, judge1, ...): mean seconds per sample and NFE, from the traces."""
    table: dict[str, dict[str, float]] = {}
    for results in runs:
        for r in results:
            for st in r.trace.stages:
                entry = table.setdefault(st.name, {"seconds": 0.0, "nfe": st.nfe, "n": 0})
                entry["seconds"] += st.seconds
                entry["n"] += 1
    return {k: {"seconds": v["seconds"] / v["n"], "nfe": v["nfe"]} for k, v in table.items()}


def run_suite(run: RunConfig, output: Path) -> dict[str, Any]:
    cfg = run.speed
    check(cfg)
    device_name = resolve_device(run.model.device)
    dtype = resolve_dtype(run.model.dtype, device_name)
    device = torch.device(device_name)
    started = time.time()
    pipe, weights = build_pipeline(run, device_name, dtype)
    rates = measure_device(device, dtype) if cfg.floor else None
    bench = Bench(pipe, cfg, device, dtype, rates)
    params = count_parameters(pipe.ck.config).table()
    result: dict[str, Any] = {
        "weights": weights, "model_preset": None if run.model.checkpoint else cfg.model_preset,
        "dtype": str(dtype).replace("torch.", ""), "machine": machine(device),
        "device_rates": rates.to_json() if rates else None, "parameters": params,
        "config": to_dict(run)["speed"], "cases": measure_cases(bench), "comparisons": {},
    }
    for name in cfg.comparisons:
        if name in COMPARISONS:
            result["comparisons"][name] = COMPARISONS[name](bench)
    if "harness" in cfg.comparisons:
        result["harness"] = harness_overhead(pipe, device, output / "harness", cfg.harness_samples,
                                             cfg.resolutions[0], cfg.image_steps, run.seed)
    if "scoring" in cfg.comparisons:
        result["scoring"] = scoring_throughput(run.backends)
    if cfg.model_preset == "official" and not run.model.checkpoint and rates is not None:
        result["predictions"] = official_predictions(
            rates, (int(cfg.input_size[0]), int(cfg.input_size[1])), cfg.understand_tokens, cfg.image_steps,
            cfg.qwen_prompt_tokens, cfg.qwen_answer_tokens)
    result["wall_s"] = time.time() - started
    return result


def run_speed(cfg: RunConfig | SpeedConfig, output: Path) -> dict[str, Any]:
    """Run the speed suite; writes `output/speed.json` and `output/speed.md`, returns the JSON dict."""
    run = cfg if isinstance(cfg, RunConfig) else RunConfig(speed=cfg)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    with cpu_threads(run.speed.cpu_threads), torch.no_grad():
        result = run_suite(run, output)
    (output / "speed.json").write_text(json.dumps(result, indent=2, default=str))
    write_markdown(result, output / "speed.md")
    return result
