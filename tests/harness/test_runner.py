"""Runner guarantees: resume after SIGKILL, world-size independence, error records, re-scoring."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lavida_bench.app import execute, score_run
from lavida_bench.config import load_config
from lavida_bench.store import RunStore
from tests.harness.fake import SeededModel, register, write_items

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def config(out, data, batch=1):
    register()
    return load_config(None, [f"output={out}", f"tasks.echo.data={data}", f"batch_size={batch}",
                              "model.kind=constant"])


def outputs(run):
    """(id, seed, output) per record of the merged outputs: what must not depend on how it ran."""
    lines = (Path(run) / "records/echo/plain/outputs.jsonl").read_text().splitlines()
    return [(r["id"], r["seed"], r["output"]) for r in map(json.loads, lines)]


def fake_cmd(out, data, delay, batch=1):
    return [PY, "-m", "tests.harness.fake", str(out), str(data), str(delay), str(batch)]


@pytest.fixture()
def data(tmp_path):
    write_items(tmp_path / "data", 30)
    return tmp_path / "data"


@pytest.fixture()
def reference(tmp_path, data):
    out = tmp_path / "ref"
    execute(config(out, data), model=SeededModel(), progress=False)
    return outputs(out)


def test_outputs_do_not_depend_on_batch_size(tmp_path, data, reference):
    execute(config(tmp_path / "b4", data, batch=4), model=SeededModel(), progress=False)
    assert outputs(tmp_path / "b4") == reference


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path, data, reference):
    out = tmp_path / "killed"
    proc = subprocess.Popen(fake_cmd(out, data, 0.1), cwd=ROOT)
    part = out / "records/echo/plain/outputs.part-r0.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not part.exists() or len(part.read_text().splitlines()) < 5):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(part.read_text().splitlines())
    assert 5 <= done_before < 30, "the kill must land mid-run"
    with open(part, "ab") as f:  # and simulate a kill during a record write
        f.write(b'{"id": "s029", "status": "ok", "outp')
    model = SeededModel()
    execute(config(out, data), model=model, progress=False)
    got = outputs(out)
    assert got == reference
    assert len({i for i, _, _ in got}) == 30
    assert model.calls == 30 - done_before  # finished samples were not regenerated


def test_two_processes_then_resume_on_one_equals_one_process(tmp_path, data, reference):
    out = tmp_path / "dist"
    torchrun = [PY, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533"]
    proc = subprocess.Popen(torchrun + fake_cmd(out, data, 0.1)[1:], cwd=ROOT, start_new_session=True)
    deadline = time.time() + 120
    parts = out / "records/echo/plain"
    while time.time() < deadline:
        n = sum(len(p.read_text().splitlines()) for p in parts.glob("outputs.part-r*.jsonl")) if parts.exists() else 0
        if n >= 6:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    shards = sorted(p.name for p in parts.glob("outputs.part-r*.jsonl"))
    assert shards == ["outputs.part-r0.jsonl", "outputs.part-r1.jsonl"]
    execute(config(out, data), model=SeededModel(), progress=False)
    assert outputs(out) == reference


def test_failing_sample_becomes_an_error_record_and_is_counted(tmp_path):
    write_items(tmp_path / "d", 6, fail=(2,))
    outcome = execute(config(tmp_path / "r", tmp_path / "d", batch=3), model=SeededModel(), progress=False)
    records = {r["id"]: r for r in RunStore(tmp_path / "r").outputs("echo", "plain").values()}
    assert records["s002"]["status"] == "error" and "scripted failure" in records["s002"]["error"]
    assert all(records[f"s{i:03d}"]["status"] == "ok" for i in (0, 1, 3, 4, 5))
    counts = outcome.results["tasks"]["echo"]["plain"]["counts"]
    assert counts == {"samples": 6, "generated": 5, "generation_errors": 1, "missing": 0,
                      "scored": 5, "scoring_errors": 0}
    assert outcome.errors == 1


def test_rescoring_needs_no_generation(tmp_path, data):
    cfg = config(tmp_path / "r", data)
    first = execute(cfg, model=SeededModel(), progress=False).results
    scores = tmp_path / "r/records/echo/plain/scores.jsonl"
    scores.unlink()
    again = score_run(cfg, progress=False)  # no model involved at all
    assert again["tasks"]["echo"]["plain"]["metrics"] == first["tasks"]["echo"]["plain"]["metrics"]
    assert first["tasks"]["echo"]["plain"]["metrics"]["acc"]["n"] == 30


def test_a_run_fingerprints_its_data_once(tmp_path, data, monkeypatch):
    """The manifest is built once per run (checked against the folder's before the model loads,
    then written with the model's entry): the data folder is not read twice."""
    from lavida_bench import app

    read = []
    real = app.path_fingerprint
    monkeypatch.setattr(app, "path_fingerprint", lambda p: read.append(str(p)) or real(p))
    execute(config(tmp_path / "r", data), model=SeededModel(), progress=False)
    assert read == [str(data)]
    manifest = json.loads((tmp_path / "r/manifest.json").read_text())
    assert manifest["model"] == SeededModel().describe() and manifest["tasks"][0]["samples"] == 30


def test_a_resume_reads_the_existing_records_once(tmp_path, data, reference, monkeypatch):
    """Counting the pending samples and dealing them out to ranks share one read of the run
    folder's record files (they used to read and check every record twice); only the merge after
    generating reads them again, to absorb what was just written."""
    from lavida_bench import store as store_module

    out = tmp_path / "r"
    execute(config(out, data), model=SeededModel(), progress=False)
    merged = out / "records/echo/plain/outputs.jsonl"
    merged.write_text("".join(merged.read_text().splitlines(keepends=True)[:20]))  # 10 samples lost
    events: list[object] = []
    read_numbered, merge = store_module.read_numbered, RunStore.merge
    monkeypatch.setattr(store_module, "read_numbered", lambda path: events.append(Path(path)) or read_numbered(path))
    monkeypatch.setattr(RunStore, "merge", lambda self, *key: events.append("merge") or merge(self, *key))
    model = SeededModel()
    execute(config(out, data), model=model, progress=False, score=False)
    assert events[:events.index("merge")] == [merged]
    assert model.calls == 10 and outputs(out) == reference


def test_resume_with_different_settings_is_refused(tmp_path, data):
    execute(config(tmp_path / "r", data), model=SeededModel(), progress=False)
    cfg = config(tmp_path / "r", data)
    cfg.seed = 99
    with pytest.raises(Exception, match="seed: 0 -> 99"):
        execute(cfg, model=SeededModel(), progress=False)


def test_duplicate_ids_and_empty_datasets_are_refused_before_model_time(tmp_path):
    from lavida_bench.api import DataError

    d = tmp_path / "d"
    d.mkdir()
    (d / "items.jsonl").write_text('{"id": "a", "q": "x", "a": "y"}\n{"id": "a", "q": "z", "a": "y"}\n')
    model = SeededModel()
    with pytest.raises(DataError, match="duplicate sample id 'a'"):
        execute(config(tmp_path / "r", d), model=model, progress=False)
    (d / "items.jsonl").write_text("")
    with pytest.raises(DataError, match="no records found"):
        execute(config(tmp_path / "r2", d), model=model, progress=False)
    assert model.calls == 0


def test_kill_during_scoring_resumes_without_rescoring(tmp_path, data):
    cfg = config(tmp_path / "r", data)
    first = execute(cfg, model=SeededModel(), progress=False).results
    scores = tmp_path / "r/records/echo/plain/scores.jsonl"
    lines = scores.read_text().splitlines(keepends=True)
    scores.write_text("".join(lines[:10]) + lines[10][:15])  # 10 scored, one torn
    again = score_run(cfg, progress=False)
    assert again["tasks"]["echo"]["plain"]["metrics"] == first["tasks"]["echo"]["plain"]["metrics"]
    ids = [json.loads(l)["id"] for l in scores.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 30
