"""The whole suite on the tiny config: table structure, exact NFE, equal outputs, files written.

No timing is asserted (timings are measured, not tested); only that every figure is there.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lavida_bench.api import ConfigError
from lavida_bench.config import RunConfig, SpeedConfig, load_config
from lavida_bench.speed import run_speed

from .conftest import RESOLUTION, STEPS

TOKENS = 8
CASES = ["understand", "ground1", "ground4", "generate", "edit", "plan_reflect"]


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("speed")
    cfg = RunConfig(seed=0)
    cfg.speed = SpeedConfig(batch_sizes=[1, 2], repeats=2, warmup=1, cases=CASES, resolutions=[RESOLUTION],
                            image_steps=STEPS, understand_tokens=TOKENS, cpu_threads=1, harness_samples=1,
                            qwen_answer_tokens=6)
    return run_speed(cfg, out), out


def case(result: dict[str, Any], name: str, batch: int = 1) -> dict[str, Any]:
    return next(c for c in result["cases"] if c["case"] == name and c["batch"] == batch)


def test_files_and_labels(result: tuple[dict[str, Any], Path]) -> None:
    res, out = result
    assert json.loads((out / "speed.json").read_text())["weights"].startswith("random weights")
    md = (out / "speed.md").read_text()
    for heading in ("## Cases", "## Comparisons", "## Planning and reflection stages", "## Harness overhead",
                    "## Scoring throughput"):
        assert heading in md
    assert res["device_rates"]["matmul_flops"] > 0 and res["parameters"]["understanding"] > 0


def test_full_table(result: tuple[dict[str, Any], Path]) -> None:
    res, _ = result
    names = ["understand", "ground1", "ground4", f"generate@{RESOLUTION}", f"edit@{RESOLUTION}",
             f"plan_reflect@{RESOLUTION}"]
    assert [(c["case"], c["batch"]) for c in res["cases"]] == [(n, b) for n in names for b in (1, 2)]
    for c in res["cases"]:
        assert c["repeats"] == 2
        for key in ("latency_s", "batch_s", "samples_per_s", "units_per_s", "nfe", "network_passes",
                    "peak_memory_bytes", "flops", "bytes", "floor_s", "measured_over_floor"):
            assert c[key] is not None, (c["case"], key)
        assert set(c["latency_s"]) == {"median", "p10", "p90", "n"}


def test_nfe_is_exact(result: tuple[dict[str, Any], Path]) -> None:
    res, _ = result
    assert (case(res, "ground1")["network_passes"], case(res, "ground1")["nfe"]) == (1, 1)
    assert case(res, "ground4")["network_passes"] == 4
    for name in (f"generate@{RESOLUTION}", f"edit@{RESOLUTION}"):
        assert (case(res, name)["network_passes"], case(res, name)["nfe"]) == (STEPS, STEPS)
    understand = case(res, "understand")
    assert (understand["prefix_encodings"], understand["network_passes"]) == (1, TOKENS + 1)
    stages = case(res, f"plan_reflect@{RESOLUTION}")["stages"]
    # plan: 64 tokens in blocks of 16, one per step + the prefix (predict_t2i_edit.py:706-808); judge: 32 tokens + prefix
    assert {k: v["nfe"] for k, v in stages.items()} == {"plan": 65, "draw1": STEPS, "judge1": 33,
                                                        "draw2": STEPS, "judge2": 33}


def test_comparisons_are_equal_and_counted(result: tuple[dict[str, Any], Path]) -> None:
    comp = result[0]["comparisons"]
    prefix = comp["prefix_cache"]
    assert prefix["equal_outputs"] is True
    assert (prefix["cache_on"]["prefix_encodings"], prefix["cache_off"]["prefix_encodings"]) == (1, TOKENS)
    assert prefix["cache_off"]["network_passes"] == 2 * TOKENS
    assert comp["image_only"]["equal_outputs"] is True
    assert comp["image_only"]["prompt_cache"]["applied"] is False
    assert 0 < comp["image_only"]["prompt_cache"]["would_save_fraction"] < 1
    cfg = comp["cfg_batching"]
    assert cfg["equal_outputs"] is True
    assert (cfg["batched"]["network_passes"], cfg["unbatched"]["network_passes"]) == (STEPS, 2 * STEPS)
    ar = comp["ground_vs_ar"][0]
    assert (ar["lavida_o"]["network_passes"], ar["autoregressive"]["network_passes"]) == (1, 4)
    assert comp["understand_vs_ar"][0]["autoregressive"]["network_passes"] == TOKENS
    qwen = comp["qwen_ground"][0]
    assert qwen["qwen2_5_vl"]["nfe"] == 6 and qwen["speedup"] > 0
    for entry in (prefix, cfg, ar, qwen):
        assert entry["speedup"] is not None


def test_image_prompt_cache_is_measured_and_labelled_approximate(result: tuple[dict[str, Any], Path]) -> None:
    approx = result[0]["comparisons"]["image_prompt_cache"]
    assert approx["labels"] == ["cache_off", "cache_on_approx"] and "APPROXIMATE" in approx["name"]
    # the cached path encodes the prompt once per draw, then runs only the image (+ trailing) rows
    assert approx["cache_off"]["network_passes"] == STEPS
    assert approx["cache_on_approx"]["network_passes"] == STEPS + 1
    assert approx["speedup"] is not None and 0.0 <= approx["code_agreement"] <= 1.0


def test_harness_and_scoring_reported(result: tuple[dict[str, Any], Path]) -> None:
    res, _ = result
    harness = res["harness"]
    assert harness["available"], harness["note"]
    assert harness["samples"] == 2 and harness["model_s"] <= harness["wall_s"]
    # the overhead splits into the fixed per-run part and the part between model calls
    assert harness["fixed_s"] > 0 and harness["between_calls_s"] >= 0
    parts = harness["fixed_s"] + harness["between_calls_s"] + harness["model_s"]
    assert parts == pytest.approx(harness["wall_s"], rel=1e-6)
    # the same two model calls replayed directly: the overhead against them is reported too
    warm = harness["warm"]  # the run again, beside the same model calls made directly
    assert 0 < warm["direct_model_s"] and warm["overhead_vs_direct_fraction"] < 1
    assert warm["fixed_s"] + warm["between_calls_s"] + warm["model_s"] == pytest.approx(warm["wall_s"], rel=1e-6)
    assert set(res["scoring"]) == {"detector_images", "inception_images", "color_crops", "vqa_questions"}


def test_speed_preset_is_valid_and_official() -> None:
    speed = load_config("speed").speed
    assert speed.image_steps == 64 and speed.understand_tokens == 256  # LaVida-O eval/run.sh, 1024_eval.yaml
    assert set(speed.cases) >= {"understand", "ground1", "ground4", "generate", "edit", "plan_reflect"}


def test_unknown_case_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown case"):
        run_speed(SpeedConfig(cases=["teleport"], comparisons=[], floor=False), tmp_path)


def test_compiled_text_comparison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`compile_text`: same answers required; the compiled row gets the eager passes' floor
    (inductor is swapped for aot_eager to stay fast: the comparison's plumbing is under test)."""
    import torch

    import lavida_bench.model.text_decoder as text_decoder

    monkeypatch.setattr(text_decoder, "compile_pass", lambda fn: torch.compile(fn, fullgraph=True, backend="aot_eager"))
    torch._dynamo.reset()
    cfg = RunConfig(seed=0)
    cfg.speed = SpeedConfig(batch_sizes=[1], repeats=1, warmup=1, cases=[], understand_tokens=TOKENS, cpu_threads=1,
                            comparisons=["compile_text"])
    entry = run_speed(cfg, tmp_path)["comparisons"]["compile_text"]
    assert entry["labels"] == ["eager", "compiled"] and entry["equal_outputs"] is True
    assert entry["compile_s"] > 0 and entry["speedup"] > 0
    assert entry["compiled"]["floor_s"] == entry["eager"]["floor_s"] > 0
    assert entry["compiled"]["network_passes"] == entry["eager"]["network_passes"] == TOKENS + 1
