"""Bad weights are refused by name: missing shard, renamed key, wrong shape, wrong dtype, a pickle
where a safetensors shard belongs (never unpickled), a config.json of another model."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from lavida_bench.model.checkpoint import INDEX_FILE, CheckpointError, load_checkpoint
from safetensors.torch import load_file, save_file

SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"
KEY = "model.transformer.blocks.0.q_proj.weight"  # lives in SHARD1 of the tiny checkpoint


@pytest.fixture()
def ckpt(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    index = json.loads((folder / INDEX_FILE).read_text())
    assert index["weight_map"][KEY] == SHARD1  # the fixture's layout these tests rely on
    return folder


def read_shard(path: Path) -> dict[str, torch.Tensor]:
    """Tensors copied out of the file (load_file maps it; rewriting a mapped file is a SIGBUS)."""
    return {k: v.clone() for k, v in load_file(path).items()}


def rewrite_shard(folder: Path, edit) -> None:
    """Apply `edit` to SHARD1's tensors (and its key list to the index)."""
    tensors = read_shard(folder / SHARD1)
    edit(tensors)
    save_file(tensors, folder / SHARD1, metadata={"format": "pt"})
    index = json.loads((folder / INDEX_FILE).read_text())
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if v != SHARD1}
    index["weight_map"].update({k: SHARD1 for k in tensors})
    (folder / INDEX_FILE).write_text(json.dumps(index))


def refused(folder: Path, *needles: str, error: type[Exception] = CheckpointError) -> str:
    """Load `folder`, expect `error`, and check that its message names every needle (files, keys)."""
    with pytest.raises(error) as caught:
        load_checkpoint(folder)
    message = str(caught.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not named in: {message}"
    return message


def test_the_intact_copy_loads(ckpt):
    assert load_checkpoint(ckpt).report.ok


def test_missing_shard(ckpt):
    (ckpt / SHARD2).unlink()
    refused(ckpt, str(ckpt), SHARD2, "missing")


def test_renamed_key(ckpt):
    rewrite_shard(ckpt, lambda t: t.__setitem__(KEY.replace("q_proj", "query"), t.pop(KEY)))
    message = refused(ckpt, str(ckpt), KEY, KEY.replace("q_proj", "query"))
    assert f"missing: {KEY}" in message and f"unexpected: {KEY.replace('q_proj', 'query')}" in message


def test_key_the_index_promises_but_the_shard_lacks(ckpt):
    tensors = read_shard(ckpt / SHARD1)
    del tensors[KEY]
    save_file(tensors, ckpt / SHARD1, metadata={"format": "pt"})
    refused(ckpt, str(ckpt / SHARD1), KEY)


def test_wrong_shape(ckpt):
    rewrite_shard(ckpt, lambda t: t.__setitem__(KEY, torch.zeros(3, 5)))
    refused(ckpt, str(ckpt), f"{KEY}: file [3, 5] vs model [64, 64]")


def test_integer_tensor_where_floats_belong(ckpt):
    rewrite_shard(ckpt, lambda t: t.__setitem__(KEY, torch.zeros(64, 64, dtype=torch.int32)))
    refused(ckpt, str(ckpt), KEY, "floating-point")


def test_pickle_shard_is_refused_without_unpickling(ckpt, monkeypatch):
    torch.save(read_shard(ckpt / SHARD1), ckpt / SHARD1)  # a pickle under the safetensors name
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a pickle was about to be unpickled")

    class ForbiddenUnpickler(pickle.Unpickler):
        def __init__(self, *args, **kwargs):
            forbidden()

    monkeypatch.setattr(pickle, "Unpickler", ForbiddenUnpickler)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    refused(ckpt, str(ckpt / SHARD1), "safetensors")
    assert calls == []


def test_config_of_another_model(ckpt):
    llama = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
             "num_attention_heads": 32, "num_hidden_layers": 32, "vocab_size": 32000}
    (ckpt / "config.json").write_text(json.dumps(llama))
    refused(ckpt, str(ckpt / "config.json"), "not a Lavida-O config", "'llama'", error=ValueError)


def test_truncated_shard(ckpt):
    data = (ckpt / SHARD2).read_bytes()
    (ckpt / SHARD2).write_bytes(data[: len(data) // 2])
    refused(ckpt, str(ckpt / SHARD2))


def test_cli_refuses_a_bad_checkpoint_with_exit_code_2(ckpt, tmp_path, capsys):
    from lavida_bench.cli import main
    from tests.reliability.fakes import register, write_items

    register()
    write_items(tmp_path / "echo", 2)
    (ckpt / SHARD2).unlink()
    code = main(["run", f"tasks.echo.data={tmp_path / 'echo'}", "model.kind=lavida_o", f"model.checkpoint={ckpt}",
                 "model.device=cpu", "--output", str(tmp_path / "run")])
    assert code == 2
    assert SHARD2 in capsys.readouterr().err
