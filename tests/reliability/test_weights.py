"""Bad weights are refused by name: missing shard, renamed key, wrong shape, wrong dtype, a pickle
where a safetensors shard belongs (never unpickled), a config.json of another model. Through the CLI
every bad checkpoint ends with exit 2 and one line naming the file and what was expected; nothing
outside the checkpoint folder is read; the manifest fingerprints the weights, so a resume on
swapped weights is refused (issue 13, "Checkpoint trust")."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lavida_bench.api import CheckpointError
from lavida_bench.model.checkpoint import INDEX_FILE, load_checkpoint

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


# --- bad checkpoints through the CLI: exit 2, one line naming the file and what was expected ------
def cli(args: list[str], capsys) -> tuple[int, str]:
    from lavida_bench.cli import main

    code = main(args)
    return code, capsys.readouterr().err


def run_on(ckpt: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, str]:
    """`lavida-bench run` on a 2-sample echo task with the real Lavida-O loader."""
    from tests.reliability.fakes import register, write_items

    register()
    write_items(tmp_path / "echo", 2)
    return cli(["run", f"tasks.echo.data={tmp_path / 'echo'}", "model.kind=lavida_o", f"model.checkpoint={ckpt}",
                "model.device=cpu", "model.cpu_threads=1", *extra, "--no-score", "--output", str(tmp_path / "run")],
               capsys)


def one_line_refusal(code: int, err: str, *needles: str) -> str:
    """Exit 2, no traceback, and exactly one `error:` line, the last, naming every needle (a
    library's warning may precede it: transformers warns once per process about model types)."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2 and "Traceback" not in err, err
    assert len(errors) == 1 and lines[-1] == errors[0], err
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not named in: {errors[0]}"
    return errors[0]


def strip_vq_from_shards(folder: Path) -> None:
    """Shards without model.vqvae.*: the loader must then read vqvae/ (the release's layout)."""
    index = json.loads((folder / INDEX_FILE).read_text())
    for name in (SHARD1, SHARD2):
        tensors = {k: v for k, v in read_shard(folder / name).items() if not k.startswith("model.vqvae.")}
        save_file(tensors, folder / name, metadata={"format": "pt"})
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if not k.startswith("model.vqvae.")}
    (folder / INDEX_FILE).write_text(json.dumps(index))


def weight_map_as_list(folder: Path) -> None:
    index = json.loads((folder / INDEX_FILE).read_text())
    index["weight_map"] = [[k, v] for k, v in index["weight_map"].items()]
    (folder / INDEX_FILE).write_text(json.dumps(index))


def non_utf8_index(folder: Path) -> None:
    (folder / INDEX_FILE).write_bytes(b'{"weight_map": {"model.\xff\xfe": "' + SHARD1.encode() + b'"}}')


def malformed_config(folder: Path) -> None:
    (folder / "config.json").write_text('{"model_type": "llada", "d_model": ')


def config_with_wrong_types(folder: Path) -> None:
    raw = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**raw, "d_model": "wide", "n_layers": [2]}))


def garbage_tokenizer(folder: Path) -> None:
    (folder / "tokenizer.json").write_bytes(bytes(range(256)) * 4)


def tokenizer_json_of_another_schema(folder: Path) -> None:
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "Nonsense"}}')


def vqvae_only_bin(folder: Path) -> None:
    strip_vq_from_shards(folder)
    vq = folder / "vqvae"
    state = read_shard(vq / "diffusion_pytorch_model.safetensors")
    for child in vq.iterdir():
        child.unlink()
    torch.save(state, vq / "diffusion_pytorch_model.bin")


def truncated_vqvae(folder: Path) -> None:
    strip_vq_from_shards(folder)
    path = folder / "vqvae" / "diffusion_pytorch_model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def pickle_named_vqvae_safetensors(folder: Path) -> None:
    strip_vq_from_shards(folder)
    path = folder / "vqvae" / "diffusion_pytorch_model.safetensors"
    torch.save(read_shard(path), path)


def pickle_named_shard(folder: Path) -> None:
    torch.save(read_shard(folder / SHARD1), folder / SHARD1)


BAD_CHECKPOINTS = {  # breaker -> (file named, phrase saying what was expected)
    "weight_map_as_list": (weight_map_as_list, INDEX_FILE, "expected an object mapping tensor names"),
    "non_utf8_index": (non_utf8_index, INDEX_FILE, "not UTF-8"),
    "malformed_config": (malformed_config, "config.json", "expected the release's config.json"),
    "config_with_wrong_types": (config_with_wrong_types, "config.json", "do not build a Lavida-O network"),
    "garbage_tokenizer": (garbage_tokenizer, "tokenizer.json", "expected a Hugging Face tokenizer file"),
    "tokenizer_json_of_another_schema": (tokenizer_json_of_another_schema, "tokenizer.json",
                                         "expected the release's tokenizer.json"),
    "vqvae_only_bin": (vqvae_only_bin, "vqvae/diffusion_pytorch_model.safetensors",
                       "diffusion_pytorch_model.bin: pickled weights are never loaded"),
    "truncated_vqvae": (truncated_vqvae, "vqvae/diffusion_pytorch_model.safetensors", "safetensors"),
    "pickle_named_vqvae_safetensors": (pickle_named_vqvae_safetensors,
                                       "vqvae/diffusion_pytorch_model.safetensors", "pickled weights are never loaded"),
    "pickle_named_shard": (pickle_named_shard, SHARD1, "pickled weights are never loaded"),
}


def forbid_unpickling(monkeypatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("a pickle was about to be unpickled")

    class ForbiddenUnpickler(pickle.Unpickler):
        def __init__(self, *args, **kwargs):
            forbidden()

    monkeypatch.setattr(pickle, "Unpickler", ForbiddenUnpickler)
    for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, name, forbidden)


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_bad_checkpoint_run_exits_2_with_one_line(case, ckpt, tmp_path, capsys, monkeypatch):
    breaker, named, expected = BAD_CHECKPOINTS[case]
    breaker(ckpt)
    forbid_unpickling(monkeypatch)
    one_line_refusal(*run_on(ckpt, tmp_path, capsys), str(ckpt / named), expected)
    assert not (tmp_path / "run" / "manifest.json").exists()  # refused before the run folder is used


@pytest.mark.parametrize("case", ["weight_map_as_list", "non_utf8_index", "malformed_config",
                                  "config_with_wrong_types", "pickle_named_shard"])
def test_bad_checkpoint_model_info_exits_2_with_one_line(case, ckpt, capsys):
    breaker, named, expected = BAD_CHECKPOINTS[case]
    breaker(ckpt)
    one_line_refusal(*cli(["model-info", "--checkpoint", str(ckpt)], capsys), str(ckpt / named), expected)


def test_model_info_on_a_missing_folder(tmp_path, capsys):
    one_line_refusal(*cli(["model-info", "--checkpoint", str(tmp_path / "nowhere")], capsys),
                     str(tmp_path / "nowhere"), "expected a checkpoint")


# --- containment: nothing outside the checkpoint folder is read ------------------------------------
def move_outside(ckpt: Path, name: str) -> Path:
    """Move `name` to a sibling folder of the checkpoint; returns its new path."""
    outside = ckpt.parent / "outside"
    outside.mkdir(exist_ok=True)
    target = outside / Path(name).name
    (ckpt / name).rename(target)
    return target


def point_index_at(ckpt: Path, shard: str, entry: str) -> None:
    index = json.loads((ckpt / INDEX_FILE).read_text())
    index["weight_map"] = {k: (entry if v == shard else v) for k, v in index["weight_map"].items()}
    (ckpt / INDEX_FILE).write_text(json.dumps(index))


def test_index_entry_with_dotdot_is_refused(ckpt, tmp_path, capsys):
    move_outside(ckpt, SHARD2)
    point_index_at(ckpt, SHARD2, f"../outside/{SHARD2}")
    refused(ckpt, f"'../outside/{SHARD2}'", "outside the checkpoint folder", INDEX_FILE)
    one_line_refusal(*run_on(ckpt, tmp_path, capsys), f"'../outside/{SHARD2}'", "outside the checkpoint folder")


def test_index_entry_with_an_absolute_path_is_refused(ckpt, tmp_path, capsys):
    target = move_outside(ckpt, SHARD2)
    point_index_at(ckpt, SHARD2, str(target))
    refused(ckpt, repr(str(target)), "outside the checkpoint folder")
    one_line_refusal(*cli(["model-info", "--checkpoint", str(ckpt)], capsys), repr(str(target)), INDEX_FILE)


@pytest.mark.parametrize("name", [SHARD2, "tokenizer.json", "config.json", "vqvae/config.json",
                                  "vqvae/diffusion_pytorch_model.safetensors", "vqvae"])
def test_symlink_leading_outside_is_refused(name, ckpt, tmp_path, capsys):
    (ckpt / name).symlink_to(move_outside(ckpt, name), target_is_directory=name == "vqvae")
    refused(ckpt, repr(name), "outside the checkpoint folder")
    one_line_refusal(*run_on(ckpt, tmp_path, capsys), repr(name), "outside the checkpoint folder")


def test_symlinks_inside_the_folder_are_fine(ckpt):
    (ckpt / "store").mkdir()
    (ckpt / SHARD2).rename(ckpt / "store" / SHARD2)
    (ckpt / SHARD2).symlink_to(Path("store") / SHARD2)
    assert load_checkpoint(ckpt).report.ok


def hf_cache_snapshot(ckpt: Path, cache: Path) -> Path:
    """The Hugging Face cache layout: <repo>/snapshots/<rev>/ whose files link to <repo>/blobs/."""
    repo = cache / "models--jacklishufan--LaViDa-O-v1.0"
    snapshot, blobs = repo / "snapshots" / "0123abcd", repo / "blobs"
    blobs.mkdir(parents=True)
    for path in sorted(p for p in ckpt.rglob("*") if p.is_file()):
        rel = path.relative_to(ckpt)
        blob = blobs / f"blob{len(list(blobs.iterdir()))}"
        path.rename(blob)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(*[".."] * (len(rel.parts) + 1), "blobs", blob.name))
    return snapshot


def test_hugging_face_cache_snapshot_loads_and_is_still_contained(ckpt, tmp_path):
    snapshot = hf_cache_snapshot(ckpt, tmp_path / "hub")
    assert (snapshot / SHARD1).is_symlink()
    assert load_checkpoint(snapshot).report.ok
    blob, elsewhere = (snapshot / SHARD2).resolve(), tmp_path / "elsewhere"  # out of the cached repo
    elsewhere.mkdir()
    (snapshot / SHARD2).unlink()
    (snapshot / SHARD2).symlink_to(blob.rename(elsewhere / blob.name))
    refused(snapshot, repr(SHARD2), "outside the checkpoint folder")


# --- weights fingerprint: a resume on swapped weights is refused ------------------------------------
def test_swapped_shard_contents_are_refused_on_resume(ckpt, tmp_path, capsys):
    """The seed-1 tiny model's shard has the same header and size as seed 0's (one architecture):
    only the data hash tells them apart."""
    from lavida_bench.fingerprint import safetensors_fingerprint
    from lavida_bench.model.tiny import make_tiny_checkpoint

    code, err = run_on(ckpt, tmp_path, capsys, "tasks.echo.limit=1")  # as if killed after 1 of 2 samples
    assert code in (0, 1) and (tmp_path / "run" / "manifest.json").is_file(), err
    other = make_tiny_checkpoint(tmp_path / "seed1", seed=1)
    before, after = safetensors_fingerprint(ckpt / SHARD1), safetensors_fingerprint(other / SHARD1)
    assert (before["size"], before["header_sha256"]) == (after["size"], after["header_sha256"])
    shutil.copyfile(other / SHARD1, ckpt / SHARD1)
    code, err = run_on(ckpt, tmp_path, capsys)
    assert code == 2 and "Traceback" not in err, err
    assert f"model.fingerprint.{SHARD1}.data_sha256: '{before['data_sha256']}' -> '{after['data_sha256']}'" in err


def test_manifest_fingerprints_every_file_the_loader_reads(ckpt):
    fingerprint = load_checkpoint(ckpt).fingerprint
    assert {SHARD1, SHARD2, INDEX_FILE, "config.json", "tokenizer.json", "vqvae/config.json"} <= set(fingerprint)
    assert "vqvae/diffusion_pytorch_model.safetensors" not in fingerprint  # unused: the shards hold model.vqvae.*
    assert set(fingerprint[SHARD1]) == {"size", "header_sha256", "data_sha256", "data_hashed"}
    assert fingerprint[SHARD1]["data_hashed"] == "16 evenly spaced 64 KiB blocks"  # the 4 MiB shard is sampled


def test_full_weights_hash_is_a_config_option(ckpt, tmp_path):
    from lavida_bench.config import load_config
    from lavida_bench.model.pipeline import LavidaPipeline

    cfg = load_config(None, [f"model.checkpoint={ckpt}", "model.device=cpu", "model.full_weights_hash=true"])
    fingerprint = LavidaPipeline.from_config(cfg.model).describe()["fingerprint"]
    assert fingerprint[SHARD1]["data_hashed"] == "every byte"


def large_safetensors(path: Path, seed: int) -> Path:
    """One 3 MiB tensor: larger than the 16 x 64 KiB the default fingerprint reads."""
    save_file({"w": torch.randn(1024, 768, generator=torch.Generator().manual_seed(seed))}, path)
    return path


def test_sampled_fingerprint_tells_weights_of_one_shape_apart(tmp_path):
    from lavida_bench.fingerprint import safetensors_fingerprint

    a = safetensors_fingerprint(large_safetensors(tmp_path / "a.safetensors", 0))
    b = safetensors_fingerprint(large_safetensors(tmp_path / "b.safetensors", 1))
    assert a["data_hashed"] == "16 evenly spaced 64 KiB blocks"
    assert (a["size"], a["header_sha256"]) == (b["size"], b["header_sha256"]) and a["data_sha256"] != b["data_sha256"]


def test_an_edit_between_the_sampled_blocks_needs_the_full_hash(tmp_path):
    """The documented limit of the default: 4 bytes changed between two sampled blocks."""
    from lavida_bench.fingerprint import SAMPLE_BLOCK_BYTES, safetensors_fingerprint

    path = large_safetensors(tmp_path / "a.safetensors", 0)
    quick, full = safetensors_fingerprint(path), safetensors_fingerprint(path, full=True)
    data = bytearray(path.read_bytes())
    offset = 8 + int.from_bytes(data[:8], "little") + SAMPLE_BLOCK_BYTES + 1000  # after block 0, before block 1
    data[offset:offset + 4] = bytes(4) if data[offset:offset + 4] != bytes(4) else b"\x01\x02\x03\x04"
    path.write_bytes(bytes(data))
    assert safetensors_fingerprint(path) == quick
    assert safetensors_fingerprint(path, full=True)["data_sha256"] != full["data_sha256"]


def test_index_entry_that_cannot_be_a_path_is_refused(ckpt, tmp_path, capsys):
    point_index_at(ckpt, SHARD2, "model\u0000.safetensors")
    one_line_refusal(*run_on(ckpt, tmp_path, capsys), INDEX_FILE, "cannot be resolved", "expected a file name")
