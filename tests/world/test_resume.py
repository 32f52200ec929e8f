"""A killed training run resumes from its last snapshot and ends with the uninterrupted run's
weights and loss log: what lets a run longer than one sitting (the full world run takes hours on
2 cores) be finished, and what `--resume` promises."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import lavida_bench.world.run as run
import lavida_bench.world.vqtrain as vqtrain
from lavida_bench.world.run import RunSettings, train_world, world_tokenizer
from lavida_bench.world.snapshot import Progress

TOOLS = Path(__file__).resolve().parents[2] / "tools"

TUNED = RunSettings(seed=5, vq_steps=3, vision_steps=2, steps=4, early_step=2, text_batch=2, image_batch=2,
                    tune_steps=3, tune_lr=1e-3)


class Killed(Exception):
    """Stands for the process being killed."""


def killed(*args, **kwargs):
    raise Killed


def log_lines(folder: Path) -> list[dict]:
    """loss.jsonl without its wall-clock field."""
    lines = [json.loads(x) for x in (folder / "loss.jsonl").read_text().splitlines()]
    return [{k: v for k, v in x.items() if k != "seconds"} for x in lines]


def kill_at_update(monkeypatch, n: int) -> None:
    """The run dies just before its `n`-th network update (stages counted together)."""
    real, calls = run.training_step, [0]

    def step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(run, "training_step", step)


@pytest.fixture(scope="module", autouse=True)
def quicker_runs():
    """Every run here builds its VQ's vocabulary from 200 scenes, not 3,000 (2 s, not 10), and
    learns its tokenizer once per seed (it depends on nothing else; 3 s a run)."""
    vocabulary, tokenizers = vqtrain.patch_vocabulary, {}

    def tokenizer(settings):
        if settings.seed not in tokenizers:
            tokenizers[settings.seed] = world_tokenizer(settings)
        return tokenizers[settings.seed]

    with pytest.MonkeyPatch.context() as m:
        m.setattr(vqtrain, "patch_vocabulary", lambda rng: vocabulary(rng, 200))
        m.setattr(run, "world_tokenizer", tokenizer)
        yield


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("whole") / "run"
    train_world(TUNED, folder, command="whole")
    return folder


@pytest.mark.parametrize("update, resumed_at", [
    (4, {"unit": "network", "step": 2}),  # inside the first stage: steps 3 and 4 are done again
    (5, {"unit": "network", "step": 4}),  # between stages: the tuning stage starts fresh
    (7, {"unit": "tune", "step": 2}),  # inside the tuning stage
])
def test_a_run_killed_in_a_network_stage_resumes_to_the_same_weights(tmp_path, monkeypatch, whole, update,
                                                                      resumed_at) -> None:
    monkeypatch.setattr(run, "SNAPSHOT_EVERY", 2)
    with monkeypatch.context() as m:
        kill_at_update(m, update)
        with pytest.raises(Killed):
            train_world(TUNED, tmp_path / "run", command="first")
    assert not (tmp_path / "run" / "train.json").exists()
    record = train_world(TUNED, tmp_path / "run", command="ignored", resume=True)
    expected = json.loads((whole / "train.json").read_text())
    assert record["fingerprint"] == expected["fingerprint"]
    assert record["final_losses"] == expected["final_losses"]
    assert log_lines(tmp_path / "run") == log_lines(whole)  # the steps after the snapshot are not logged twice
    assert record["command"] == "first" and record["resumed_at"] == [resumed_at]
    assert not (tmp_path / "run" / "resume").exists()


def test_a_run_killed_in_vision_pretraining_keeps_its_vq(tmp_path, monkeypatch, whole) -> None:
    with monkeypatch.context() as m:
        m.setattr(run, "pretrain_vision", killed)
        with pytest.raises(Killed):
            train_world(TUNED, tmp_path / "run")
    with monkeypatch.context() as m:  # the VQ comes from the snapshot: training it again would fail
        m.setattr(run, "train_vq", killed)
        record = train_world(TUNED, tmp_path / "run", resume=True)
    assert record["fingerprint"] == json.loads((whole / "train.json").read_text())["fingerprint"]
    assert log_lines(tmp_path / "run") == log_lines(whole)
    assert record["resumed_at"] == [{"unit": "vq", "step": 3}]


def test_a_continued_run_resumes_too(tmp_path, monkeypatch, whole) -> None:
    base = replace(TUNED, tune_steps=0)
    train_world(base, tmp_path / "base")
    monkeypatch.setattr(run, "SNAPSHOT_EVERY", 2)
    with monkeypatch.context() as m:
        kill_at_update(m, 3)
        with pytest.raises(Killed):
            train_world(TUNED, tmp_path / "run", continue_from=tmp_path / "base")
    record = train_world(TUNED, tmp_path / "run", continue_from=tmp_path / "base", resume=True)
    assert record["fingerprint"] == json.loads((whole / "train.json").read_text())["fingerprint"]
    assert record["resumed_at"] == [{"unit": "tune", "step": 2}]


def test_a_run_with_a_phase_resumes_and_continues_to_the_one_commands_weights(tmp_path, monkeypatch) -> None:
    """The phase sits between the first and the tuning stage: killed after it, the run resumes at
    its end; a base run that trained it, continued, ends where the one command does."""
    phased = replace(TUNED, phases="color_qa=1@2")
    whole = train_world(phased, tmp_path / "whole")
    assert [x["stage"] for x in log_lines(tmp_path / "whole") if "task" in x][4:6] == ["phase1", "phase1"]
    monkeypatch.setattr(run, "SNAPSHOT_EVERY", 2)
    with monkeypatch.context() as m:
        kill_at_update(m, 7)  # first stage 4 updates, the phase 2, then the tuning stage's first
        with pytest.raises(Killed):
            train_world(phased, tmp_path / "run")
    resumed = train_world(phased, tmp_path / "run", resume=True)
    assert resumed["fingerprint"] == whole["fingerprint"] and resumed["resumed_at"] == [{"unit": "phase1", "step": 2}]
    train_world(replace(phased, tune_steps=0), tmp_path / "base")
    continued = train_world(phased, tmp_path / "continued", continue_from=tmp_path / "base")
    assert continued["fingerprint"]["checkpoint"] == whole["fingerprint"]["checkpoint"]


def test_a_run_lent_a_finished_runs_vq_ends_with_the_weights_of_the_run_that_trains_it(tmp_path, monkeypatch,
                                                                                        whole) -> None:
    """`vq_from`: the VQ stage depends on the seed and its steps only, so a finished run's VQ stands
    for it and the network stages end where the one command's do (same threads); train.json names
    the source, and a kill after the lent VQ resumes with it."""
    with monkeypatch.context() as m:
        m.setattr(run, "train_vq", killed)  # lent, never trained
        m.setattr(run, "pretrain_vision", killed)
        with pytest.raises(Killed):
            train_world(TUNED, tmp_path / "run", command="lent", vq_from=whole)
    with pytest.raises(ValueError, match="VQ source"):
        train_world(TUNED, tmp_path / "run", resume=True)
    with monkeypatch.context() as m:
        m.setattr(run, "train_vq", killed)
        record = train_world(TUNED, tmp_path / "run", resume=True, vq_from=whole)
    expected = json.loads((whole / "train.json").read_text())
    assert record["fingerprint"] == expected["fingerprint"]
    vq_file = "vqvae/diffusion_pytorch_model.safetensors"
    assert record["vq_from"] == {"run": str(whole), "command": "whole",
                                 "fingerprint": {vq_file: expected["fingerprint"]["checkpoint"][vq_file]}}
    assert [x["stage"] for x in log_lines(tmp_path / "run")] == ["vision"] * 2 + ["network"] * 4 + ["tune"] * 3
    assert record["command"] == "lent" and record["resumed_at"] == [{"unit": "vq", "step": 3}]


def test_a_vq_source_must_be_a_finished_run_of_the_same_vq_stage(tmp_path, whole) -> None:
    with pytest.raises(ValueError, match=r"settings \['seed'\] differ from this run's"):
        train_world(replace(TUNED, seed=6), tmp_path / "seed", vq_from=whole)
    with pytest.raises(ValueError, match="exclude each other"):
        train_world(TUNED, tmp_path / "both", vq_from=whole, continue_from=whole)
    with pytest.raises(FileNotFoundError, match="vq_from needs a finished training run"):
        train_world(TUNED, tmp_path / "none", vq_from=tmp_path)
    changed = tmp_path / "changed"
    shutil.copytree(whole, changed)
    (changed / "checkpoint" / "vqvae" / "diffusion_pytorch_model.safetensors").write_bytes(b"changed")
    with pytest.raises(ValueError, match="weights differ from the fingerprint"):
        train_world(TUNED, tmp_path / "run", vq_from=changed)


def test_resume_refuses_what_it_cannot_continue(tmp_path, monkeypatch, whole) -> None:
    with pytest.raises(FileNotFoundError, match="nothing to resume .it has finished"):
        train_world(TUNED, whole, resume=True)
    with pytest.raises(FileNotFoundError, match="no snapshot was written"):
        train_world(TUNED, tmp_path / "empty", resume=True)
    with monkeypatch.context() as m:
        kill_at_update(m, 1)
        with pytest.raises(Killed):
            train_world(TUNED, tmp_path / "run")
    with pytest.raises(ValueError, match=r"other settings \(\['lr', 'seed'\]\)"):
        train_world(replace(TUNED, lr=1e-3, seed=6), tmp_path / "run", resume=True)
    with pytest.raises(ValueError, match="base run"):
        train_world(TUNED, tmp_path / "run", continue_from=whole, resume=True)
    with pytest.raises(FileExistsError, match="resume a killed run"):
        train_world(TUNED, tmp_path / "run")


def test_resuming_puts_the_global_generator_where_the_snapshot_left_it(tmp_path) -> None:
    """Vision pretraining draws its head's initial weights from torch's global generator."""
    progress = Progress.fresh(tmp_path, {"seed": 1}, None, "cmd", ["vq", "vision"])
    torch.manual_seed(3)
    progress.save("vq", 5, True, 0, 0.0, {"vq": {"w": torch.ones(2)}})
    expected = torch.rand(4)
    torch.manual_seed(4)
    resumed = Progress.resume(tmp_path, {"seed": 1}, None)
    assert resumed.finished("vq") and not resumed.finished("vision") and resumed.start_step("vision") == 0
    assert torch.equal(resumed.tensors("vq")["w"], torch.ones(2))
    resumed.begin()
    assert torch.equal(torch.rand(4), expected)
    resumed.begin()  # once only
    assert not torch.equal(torch.rand(4), expected)


def test_a_snapshot_older_than_a_setting_resumes_at_its_default(tmp_path) -> None:
    """A run started before a setting existed ran with its default: it resumes with that value and
    no other."""
    Progress.fresh(tmp_path, {"seed": 1}, None, "cmd", ["vq"]).save("vq", 5, True, 0, 0.0, {"vq": {"w": torch.ones(2)}})
    assert Progress.resume(tmp_path, {"seed": 1, "mix": "a"}, None, defaults={"mix": "a"}).finished("vq")
    with pytest.raises(ValueError, match=r"other settings \(\['mix'\]\)"):
        Progress.resume(tmp_path, {"seed": 1, "mix": "b"}, None, defaults={"mix": "a"})


def test_a_run_in_progress_exports_its_snapshot_as_a_checkpoint(tmp_path, monkeypatch, whole) -> None:
    import importlib.util

    from safetensors.torch import load_file

    from lavida_bench.model.checkpoint import load_checkpoint

    monkeypatch.setattr(run, "SNAPSHOT_EVERY", 2)
    with monkeypatch.context() as m:
        kill_at_update(m, 7)  # the snapshot: tuning stage, step 2 (4 + 2 network steps)
        with pytest.raises(Killed):
            train_world(TUNED, tmp_path / "run")
    ck = load_checkpoint(run.export_snapshot(tmp_path / "run", tmp_path / "exported"))
    assert ck.provenance["trained_steps"] == 6 and ck.provenance["snapshot_of"] == str(tmp_path / "run")
    saved = load_file(next((tmp_path / "run" / "resume").glob("network-tune-2.safetensors")))
    assert all(torch.equal(ck.network.state_dict()[k], v) for k, v in saved.items())
    assert torch.equal(ck.vq.model.state_dict()["quantize.embedding.weight"],
                       load_checkpoint(whole / "checkpoint").vq.model.state_dict()["quantize.embedding.weight"])

    spec = importlib.util.spec_from_file_location("train_world", TOOLS / "train_world.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--out", str(tmp_path / "run"), "--export-snapshot", str(tmp_path / "cli")]) == 0
    assert load_checkpoint(tmp_path / "cli").provenance["trained_steps"] == 6
    assert tool.main(["--out", str(whole), "--export-snapshot", str(tmp_path / "x")]) == 2  # finished: nothing
    with monkeypatch.context() as m:
        m.setattr(run, "pretrain_vision", killed)
        with pytest.raises(Killed):
            train_world(TUNED, tmp_path / "early_kill")
    with pytest.raises(ValueError, match="before the network exists"):
        run.export_snapshot(tmp_path / "early_kill", tmp_path / "y")
