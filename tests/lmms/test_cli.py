"""Acceptance (issue 5): `python -m lmms_eval --model lavida_o ...` on the shipped local task YAMLs
runs offline with the tiny checkpoint and writes the tasks' metrics."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lavida_bench.model.tiny import make_tiny_checkpoint
from lavida_bench.tasks.chartqa import relaxed_correct

from tests.lmms.conftest import FILELOCK_HINT, filelock_has_api

LIMIT = 4


def offline_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "HF_HOME": str(tmp_path / "hf_home"), "TOKENIZERS_PARALLELISM": "false"})
    env.pop("LMMS_EVAL_DATASETS_CACHE", None)
    return env


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_lmms_eval_cli_runs_lavida_o_offline_on_local_tasks(tmp_path: Path, task_dir: Path):
    if not filelock_has_api():
        pytest.fail(FILELOCK_HINT)
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny_ckpt", seed=0)
    out = tmp_path / "lmms_out"
    cmd = [sys.executable, "-m", "lmms_eval", "--model", "lavida_o",
           "--model_args", f"pretrained={checkpoint},device=cpu,dtype=float32",
           "--tasks", "lavida_chartqa,lavida_mmmu_val", "--include_path", str(task_dir),
           "--limit", str(LIMIT), "--batch_size", str(LIMIT), "--output_path", str(out), "--log_samples",
           "--verbosity", "DEBUG"]  # DEBUG: lmms-eval re-raises errors (exit code 1) instead of exiting 0
    proc = subprocess.run(cmd, env=offline_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, check=False,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    [results_file] = out.rglob("*_results.json")
    results = json.loads(results_file.read_text())
    assert results["config"]["model"] == "lavida_o"
    assert results["n-samples"]["lavida_chartqa"]["effective"] == LIMIT
    assert results["n-samples"]["lavida_mmmu_val"]["effective"] == LIMIT
    chartqa = results["results"]["lavida_chartqa"]
    assert 0.0 <= chartqa["relaxed_overall,none"] <= 1.0
    assert 0.0 <= results["results"]["lavida_mmmu_val"]["mmmu_acc,none"] <= 1.0

    [chartqa_log] = out.rglob("*_samples_lavida_chartqa.jsonl")
    samples = read_jsonl(chartqa_log)
    assert [s["doc_id"] for s in samples] == list(range(LIMIT))
    for s in samples:  # the answers the tiny model gave, scored by lmms-eval and by our task alike
        answer = s["filtered_resps"] if isinstance(s["filtered_resps"], str) else s["filtered_resps"][0]
        assert isinstance(answer, str)
        assert s["relaxed_overall"] == float(relaxed_correct(answer, s["target"]))
    assert chartqa["relaxed_overall,none"] == pytest.approx(sum(s["relaxed_overall"] for s in samples) / LIMIT)
    assert len(read_jsonl(next(out.rglob("*_samples_lavida_mmmu_val.jsonl")))) == LIMIT
