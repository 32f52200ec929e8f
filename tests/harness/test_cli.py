"""The everyday command line, as a user coming from lmms-eval meets it (issue 16): the results
table, reports and log of `run`, task selection and limits, resuming, listing, and bad input
refused with exit 2 and one line naming the key or file before any model time."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lavida_bench import app
from lavida_bench.cli import main
from lavida_bench.tasks import TASKS

ROOT = Path(__file__).resolve().parents[2]
# Four ChartQA samples (human + augmented) and 32 RefCOCO expressions in the tasks' own fixtures.
CHARTQA_SAMPLES = 8


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from lavida_bench.model.tiny import make_tiny_checkpoint

    root = tmp_path_factory.mktemp("assets")
    return {"checkpoint": make_tiny_checkpoint(root / "checkpoint", seed=0),
            "chartqa": TASKS.get("chartqa").make_fixture(root / "chartqa", seed=0),
            "refcoco": TASKS.get("refcoco").make_fixture(root / "refcoco", seed=0)}


def config_file(tmp_path: Path, assets: dict[str, Path], kind: str = "constant") -> Path:
    """A small config of two tasks on the tasks' own fixtures (the constant baseline needs no weights)."""
    path = tmp_path / "small.yaml"
    path.write_text(
        f"model: {{kind: {kind}, checkpoint: {assets['checkpoint']}, device: cpu, dtype: float32, cpu_threads: 1}}\n"
        f"tasks:\n  chartqa: {{data: {assets['chartqa']}}}\n"
        f"  refcoco: {{data: {assets['refcoco']}, variants: [steps1], limit: 3}}\n")
    return path


def run(tmp_path: Path, assets: dict[str, Path], *args: str, kind: str = "constant") -> int:
    return main(["run", "--config", str(config_file(tmp_path, assets, kind)), "--output", str(tmp_path / "run"),
                 *args])


@pytest.fixture()
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the model is built."""
    def refuse(_cfg):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(app, "build_model", refuse)


def test_run_prints_results_table_writes_reports_log_and_full_records(tmp_path, assets):
    """One CLI run of the tiny Lavida-O: the table on stdout, report.md/html and run.log in the run
    folder, absolute paths in the manifest, records holding prompt, target and raw output, no
    library warnings, one progress bar per task x variant."""
    cmd = [sys.executable, "-m", "lavida_bench.cli", "run", "--config", str(config_file(tmp_path, assets, "lavida_o")),
           "--output", "run", "model.resolution=64"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["task", "variant", "metric", "scale", "better", "value", "95%", "CI", "n", "errors"]
    chartqa = next(line.split() for line in lines if line.startswith("chartqa"))
    assert chartqa[:5] == ["chartqa", "plain", "acc", "0-1", "higher"]
    assert chartqa[-4:] == [str(CHARTQA_SAMPLES), "(min", "30)", "0"]  # fewer samples than compare needs
    assert any(line.startswith("refcoco") and " steps1 " in line for line in lines)
    run_dir = tmp_path / "run"
    assert (run_dir / "report.md").is_file() and (run_dir / "report.html").is_file()
    log = (run_dir / "run.log").read_text()
    assert "model loaded in" in log and "chartqa/plain: 0 done before, 8 generated (0 errors)" in log
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["output"] == str(run_dir.resolve())
    assert manifest["config"]["tasks"]["chartqa"]["data"] == str(assets["chartqa"].resolve())
    record = json.loads((run_dir / "records/chartqa/plain/outputs.jsonl").read_text().splitlines()[0])
    assert "Answer the question" in record["prompt"] or record["prompt"]
    assert record["target"] and isinstance(record["output"]["text"], str)
    box = json.loads((run_dir / "records/refcoco/steps1/outputs.jsonl").read_text().splitlines()[0])
    assert len(box["target"]) == 4
    assert "model of type" not in proc.stderr and "kept in float32" not in proc.stderr
    bars = {part.split(":")[0].strip() for part in proc.stderr.replace("\r", "\n").splitlines() if "sample/s" in part}
    assert bars == {"chartqa/plain", "refcoco/steps1"}


def test_no_report_tasks_subset_and_fractional_limit(tmp_path, assets, capsys):
    assert run(tmp_path, assets, "--no-report", "--tasks", "chartqa", "--limit", "0.3") == 0
    out = capsys.readouterr().out
    assert "chartqa" in out and "refcoco" not in out
    run_dir = tmp_path / "run"
    assert not (run_dir / "report.md").exists()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["limit"] == 0.3
    assert [t["samples"] for t in manifest["tasks"]] == [3]  # ceil(0.3 x 8), as lmms-eval counts
    assert "--limit 0.3 (a subset of the benchmark)" in out  # flagged in the trust facts


def test_raising_a_limit_continues_the_run_lowering_is_refused(tmp_path, assets, capsys):
    assert run(tmp_path, assets, "--no-report", "--tasks", "chartqa", "--limit", "2") == 0
    assert run(tmp_path, assets, "--no-report", "--tasks", "chartqa", "--limit", "5") == 0
    records = (tmp_path / "run/records/chartqa/plain/outputs.jsonl").read_text().splitlines()
    assert len(records) == 5
    manifest = json.loads((tmp_path / "run/manifest.json").read_text())
    assert manifest["config"]["limit"] == 5 and manifest["tasks"][0]["samples"] == 5
    capsys.readouterr()
    assert run(tmp_path, assets, "--no-report", "--tasks", "chartqa", "--limit", "1") == 2
    assert "a limit may only be raised" in capsys.readouterr().err


def test_settings_are_checked_and_nothing_left_loads_no_model(tmp_path, assets, capsys, monkeypatch):
    from lavida_bench.models import build_model

    calls = []
    monkeypatch.setattr(app, "build_model", lambda cfg: calls.append(cfg) or build_model(cfg))
    assert run(tmp_path, assets, "--no-report") == 0
    assert len(calls) == 1
    assert run(tmp_path, assets, "--no-report") == 0  # nothing left to generate: scores again, no model
    assert len(calls) == 1
    capsys.readouterr()
    assert run(tmp_path, assets, "--no-report", "seed=5") == 2  # refused before the model loads
    assert "seed: 0 -> 5" in capsys.readouterr().err
    assert len(calls) == 1


def test_no_tasks_and_foreign_output_folder_are_refused_before_model_time(tmp_path, assets, capsys, no_model):
    empty = tmp_path / "empty.yaml"
    empty.write_text("model: {kind: constant}\n")
    assert main(["run", "--config", str(empty), "--output", str(tmp_path / "r")]) == 2
    assert "the config names no task" in capsys.readouterr().err
    foreign = tmp_path / "assets-like"
    foreign.mkdir()
    (foreign / "config.json").write_text("{}")
    assert main(["run", "--config", str(config_file(tmp_path, assets)), "--output", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert f"{foreign}: --output is a non-empty folder that is not a run folder" in err
    assert err.count("\n") == 1


def test_tasks_listing(capsys):
    assert main(["tasks"]) == 0
    listing = capsys.readouterr().out
    assert main(["run", "--tasks", "list"]) == 0
    assert capsys.readouterr().out == listing
    for name in ("geneval", "dpg_bench", "fid30k", "imgedit", "refcoco", "mmmu", "chartqa"):
        assert f"\n{name} " in listing
    assert "evaluation_metadata.jsonl" in listing and "docs/datasets.md" in listing


def test_single_variant_name_is_accepted():
    from lavida_bench.config import load_config

    cfg = load_config("demo", ["tasks.geneval.variants=plain"])
    assert cfg.tasks["geneval"].variants == ["plain"]


@pytest.mark.parametrize("override, key", [
    ("model.dtype=fp16", "model.dtype: 'fp16' is not one of"),
    ("model.image_settings=bogus", "model.image_settings: 'bogus' is not one of"),
    ("variants.steps4.grounding_output=final", "variants.steps4.grounding_output: 'final' is not one of"),
    ("model.device=gpu", "model.device: 'gpu' is not a device"),
    ("batch_size=0", "batch_size: must be at least 1"),
    ("tasks.chartqa.limit=-1", "tasks.chartqa.limit: expected a whole number"),
    ("limit=0", "limit: expected a whole number"),
    ("model.dtype=[oops", "override 'model.dtype=[oops': cannot parse"),
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_values_exit_2_with_one_line_naming_the_key(tmp_path, assets, capsys, no_model, command, override, key):
    code = main([command, "--config", str(config_file(tmp_path, assets)), "--output", str(tmp_path / "r"), override]
                if command == "run" else [command, "--config", str(config_file(tmp_path, assets)), override])
    err = capsys.readouterr().err
    assert code == 2
    assert key in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


def test_missing_backend_weights_are_refused_before_the_model_loads(tmp_path, assets, capsys, no_model):
    code = run(tmp_path, assets, "backends.vqa=blip", f"backends.vqa_path={tmp_path / 'no-blip'}")
    assert code == 2
    assert "backends.vqa_path" in capsys.readouterr().err


def test_validate_opens_each_tasks_data(tmp_path, assets, capsys):
    import shutil

    data = tmp_path / "chartqa"
    shutil.copytree(assets["chartqa"], data)
    (data / "test" / "test_human.json").write_text("[{\"imgname\": 3}]")
    code = main(["validate", "--config", str(config_file(tmp_path, assets)), f"tasks.chartqa.data={data}"])
    err = capsys.readouterr().err
    assert code == 2 and "test_human.json" in err


def test_other_commands_refuse_bad_input_with_exit_2(tmp_path, assets, capsys):
    assert main(["model-info", "--checkpoint", str(tmp_path / "nonexistent")]) == 2
    assert "--checkpoint: folder" in capsys.readouterr().err
    assert main(["speed", "speed.model_preset=huge"]) == 2
    assert "speed.model_preset: 'huge' is not one of tiny, small, official" in capsys.readouterr().err
    assert main(["ls", str(tmp_path / "nonexistent")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert run(tmp_path, assets, "--no-report", "--no-score") == 0
    capsys.readouterr()
    assert main(["score", str(tmp_path / "run"), "backends.judge=[oops"]) == 2
    assert "cannot parse" in capsys.readouterr().err


def test_ls_finds_nested_run_folders(tmp_path, assets, capsys):
    assert main(["run", "--config", str(config_file(tmp_path, assets)), "--output", str(tmp_path / "runs/a/b"),
                 "--no-report", "--tasks", "chartqa", "--limit", "1"]) == 0
    capsys.readouterr()
    assert main(["ls", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "runs/a/b") in out and "generated 1/1" in out


def test_speed_help_shows_no_task_option(capsys):
    with pytest.raises(SystemExit):
        main(["speed", "--help"])
    text = capsys.readouterr().out
    assert "tasks." not in text and "speed.batch_sizes" in text
