"""Checkpoint I/O in the release layout (LaVida-O `llava/model/builder.py`, `llava/model/llava_arch.py:267-274`;
issue 3 Acceptance 2):
round trip, strict key report, bf16 loading, VQ fallback to vqvae/ and the VQ round trip."""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from lavida_bench.api import CheckpointError
from lavida_bench.model.checkpoint import INDEX_FILE, load_checkpoint

Tensors = dict[str, torch.Tensor]
Q0 = "model.transformer.blocks.0.q_proj.weight"
FF1 = "model.transformer.blocks.1.ff_proj_vision.weight"


def copy_of(tiny_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_dir, tmp_path / "ckpt"))


def edit_shards(folder: Path, edit: Callable[[Tensors], Tensors]) -> None:
    """Rewrite every shard through `edit` and rebuild the index's weight_map to match."""
    index = json.loads((folder / INDEX_FILE).read_text())
    weight_map = {}
    for name in sorted(set(index["weight_map"].values())):
        tensors = edit(load_file(folder / name))
        save_file(tensors, folder / name, metadata={"format": "pt"})
        weight_map.update({k: name for k in tensors})
    index["weight_map"] = weight_map
    (folder / INDEX_FILE).write_text(json.dumps(index))


def rename(old: str, new: str) -> Callable[[Tensors], Tensors]:
    return lambda t: {(new if k == old else k): v for k, v in t.items()}


def mixed_inputs(net, ids) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Text ids + 16 gen rows from an 8x8 code grid; returns (embeds, gen_mask, codes)."""
    codes = torch.randint(0, net.config.codebook_size, (1, 64), generator=torch.Generator().manual_seed(0))
    text = torch.tensor([[ids.bos, ids.start_header, 40, 41, 42, ids.eot, ids.mask, ids.mask]])
    gen_rows = net.embed_codes(codes, 8)
    x = torch.cat([net.embed_text(text), gen_rows.to(net.embed_text(text).dtype)], dim=1)
    gen = torch.zeros(x.shape[:2], dtype=torch.bool)
    gen[:, 8:] = True
    return x, gen, codes


def logits(net, ids) -> tuple[torch.Tensor, torch.Tensor]:
    x, gen, _ = mixed_inputs(net, ids)
    hidden, _ = net(x, gen_mask=gen)
    return net.text_logits(hidden[:, :8]), net.code_logits(hidden[:, 8:], 8)


# --- round trip ---------------------------------------------------------------------------------
def test_layout_on_disk(tiny_dir: Path) -> None:
    names = {p.name for p in tiny_dir.iterdir()}
    assert {"config.json", INDEX_FILE, "vqvae"} <= names
    assert (tiny_dir / "vqvae" / "config.json").is_file()
    assert (tiny_dir / "vqvae" / "diffusion_pytorch_model.safetensors").is_file()
    raw = json.loads((tiny_dir / "config.json").read_text())
    assert raw["model_type"] == "llada" and raw["architectures"] == ["LlavaLladaForMaskedDiffusion"]  # Demo.ipynb cell 3 quirks
    weight_map = json.loads((tiny_dir / INDEX_FILE).read_text())["weight_map"]
    assert all(k.startswith("model.") for k in weight_map)  # llava_llada.py:119-126: every key starts with model.
    assert all((tiny_dir / f).is_file() for f in set(weight_map.values()))


def test_round_trip_zero_key_problems_and_identical_logits(tiny_loaded, tiny_parts) -> None:
    report = tiny_loaded.report
    assert report.ok and report.missing == [] and report.unexpected == [] and report.mismatched == []
    memory = tiny_parts[0]
    loaded_sd, memory_sd = tiny_loaded.network.state_dict(), memory.state_dict()
    assert loaded_sd.keys() == memory_sd.keys()
    assert all(torch.equal(loaded_sd[k], memory_sd[k]) for k in memory_sd)
    for a, b in zip(logits(tiny_loaded.network, tiny_loaded.ids), logits(memory, tiny_loaded.ids)):
        assert torch.equal(a, b)
    assert not any(p.is_meta for p in tiny_loaded.network.parameters())
    assert not any(b.is_meta for b in tiny_loaded.network.buffers())


def test_release_key_names_present(tiny_loaded) -> None:
    """A sample of the release's exact keys (both branches, gen I/O, vision side)."""
    keys = set(tiny_loaded.network.state_dict())
    for key in [Q0, "model.transformer.blocks.3.up_proj_vision.weight", "model.transformer.ln_f.weight",
                "model.transformer.ff_out.weight", "model.transformer.wte.weight", "model.image_newline",
                "model.gen_embedding.0.weight", "model.gen_embedding.1.weight", "model.gen_predictor.2.weight",
                "model.gen_predictor_2.1.weight", "model.downsample_gen.downsample.conv.weight",
                "model.upsample_gen.upsample.norm.weight", "model.vision_resampler.pool.bias",
                "model.mm_projector.2.weight",
                "model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight",
                "model.vision_tower.vision_tower.vision_model.encoder.layers.1.self_attn.q_proj.weight"]:
        assert key in keys, key
    assert not any("attn_out_vision" in k or k.endswith(".bias") and "transformer" in k for k in keys)


def test_saved_tokenizer_round_trips(tiny_loaded, tiny_parts) -> None:
    from lavida_bench.model.tokens import SpecialIds, chat_prompt

    memory_tok = tiny_parts[2]
    assert tiny_loaded.ids == SpecialIds.from_tokenizer(memory_tok)
    prompt = chat_prompt("Where is <box_p> the cat </box_p>?", "<LOC_BEGIN><LOC_3><LOC_1024>")
    assert tiny_loaded.tokenizer(prompt).input_ids == memory_tok(prompt).input_ids
    assert len(tiny_loaded.tokenizer) == tiny_loaded.config.vocab_size


# --- corrupted folders --------------------------------------------------------------------------
def test_renamed_key_names_both_keys(tiny_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(tiny_dir, tmp_path)
    edit_shards(folder, rename(Q0, "model.transformer.blocks.0.query.weight"))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(folder)
    assert Q0 in str(err.value) and "model.transformer.blocks.0.query.weight" in str(err.value)
    assert "1 missing" in str(err.value) and "1 unexpected" in str(err.value)


def test_wrong_shape_names_the_key_and_shapes(tiny_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(tiny_dir, tmp_path)
    edit_shards(folder, lambda t: {k: (v[:-1].contiguous() if k == FF1 else v) for k, v in t.items()})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(folder)
    msg = str(err.value)
    assert FF1 in msg and "[63, 32]" in msg and "[64, 32]" in msg  # mlp_hidden_size_gen=64, d_model_gen=32


def test_missing_shard_names_the_file(tiny_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(tiny_dir, tmp_path)
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model-00002-of-00002.safetensors"):
        load_checkpoint(folder)


def test_index_naming_a_key_the_shard_lacks(tiny_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(tiny_dir, tmp_path)
    index = json.loads((folder / INDEX_FILE).read_text())
    index["weight_map"]["model.ghost.weight"] = "model-00001-of-00002.safetensors"
    (folder / INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"model-00001-of-00002\.safetensors.*model\.ghost\.weight"):
        load_checkpoint(folder)


def test_integer_tensor_in_place_of_a_float_is_reported(tiny_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(tiny_dir, tmp_path)
    edit_shards(folder, lambda t: {k: (v.to(torch.int32) if k == Q0 else v) for k, v in t.items()})
    with pytest.raises(CheckpointError, match=Q0.replace(".", r"\.") + ".*non-floating"):
        load_checkpoint(folder)


def test_unreadable_shard_names_the_file(tiny_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(tiny_dir, tmp_path)
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(CheckpointError, match="model-00001-of-00002.safetensors"):
        load_checkpoint(folder)


def test_missing_config_and_missing_index(tiny_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(tiny_dir, tmp_path)
    (folder / INDEX_FILE).unlink()
    with pytest.raises(CheckpointError, match=INDEX_FILE.replace(".", r"\.")):
        load_checkpoint(folder)
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json"):
        load_checkpoint(folder)


def test_non_strict_load_reports_instead_of_raising(tiny_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(tiny_dir, tmp_path)
    edit_shards(folder, rename(Q0, "model.extra.weight"))
    ckpt = load_checkpoint(folder, strict=False)
    assert ckpt.report.missing == [Q0] and ckpt.report.unexpected == ["model.extra.weight"]


# --- dtype ----------------------------------------------------------------------------------------
def test_bf16_load(tiny_dir: Path, tiny_loaded) -> None:
    ckpt = load_checkpoint(tiny_dir, dtype=torch.bfloat16)
    assert {p.dtype for p in ckpt.network.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in ckpt.vq.model.parameters()} == {torch.bfloat16}
    text16, img16 = logits(ckpt.network, ckpt.ids)
    text32, img32 = logits(tiny_loaded.network, tiny_loaded.ids)
    assert text16.dtype == img16.dtype == torch.bfloat16
    # Same model, bf16 rounding only (measured: ~1% of the largest logit); a wrong weight would be O(100%).
    for lo, hi in ((text16, text32), (img16, img32)):
        assert float((lo.float() - hi).abs().max()) < 0.03 * float(hi.abs().max())


def test_eager_load_matches_sdpa_load(tiny_dir: Path, tiny_loaded) -> None:
    ckpt = load_checkpoint(tiny_dir, attn_implementation="eager")
    assert ckpt.network.attn_implementation == "eager"
    for a, b in zip(logits(ckpt.network, ckpt.ids), logits(tiny_loaded.network, tiny_loaded.ids)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


# --- VQ -------------------------------------------------------------------------------------------
def test_vq_round_trip_sizes(tiny_loaded) -> None:
    vq = tiny_loaded.vq
    assert vq.scale == 16 and vq.codebook_size == 8192  # x16 downsampling, 8192 codes (llava_arch.py:267-274)
    images = [Image.new("RGB", (64, 64), (255, 0, 0)), Image.new("RGB", (80, 40), (0, 128, 255))]
    codes = vq.encode(images, 64)
    assert codes.shape == (2, 16) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 8192
    decoded = vq.decode(codes, 4)
    assert [im.size for im in decoded] == [(64, 64), (64, 64)] and decoded[0].mode == "RGB"
    assert vq.side(1024) == 64
    with pytest.raises(ValueError, match="multiple"):
        vq.side(100)


def test_vq_input_range_and_square_padding(tiny_loaded) -> None:
    """mm_utils.py:28-31, llava_arch.py:274: sources are padded to a square with black and scaled to [0, 1], not [-1, 1]."""
    x = tiny_loaded.vq.to_tensor([Image.new("RGB", (64, 32), (255, 255, 255))], 64)
    assert x.shape == (1, 3, 64, 64)
    assert float(x[0, :, 0, 0].max()) == 0.0 and float(x[0, :, 32, 32].min()) == 1.0


def strip_vq(tensors: Tensors) -> Tensors:
    return {k: v for k, v in tensors.items() if not k.startswith("model.vqvae.")}


def test_vq_falls_back_to_vqvae_folder(tiny_dir: Path, tmp_path: Path, tiny_loaded) -> None:
    folder = copy_of(tiny_dir, tmp_path)
    edit_shards(folder, strip_vq)
    ckpt = load_checkpoint(folder)
    assert ckpt.report.ok
    folder_sd = load_file(folder / "vqvae" / "diffusion_pytorch_model.safetensors")
    got = ckpt.vq.model.state_dict()
    assert folder_sd.keys() == got.keys() and all(torch.equal(folder_sd[k], got[k]) for k in got)
    codes = torch.arange(16)[None]
    a, b = ckpt.vq.decode(codes, 4)[0], tiny_loaded.vq.decode(codes, 4)[0]
    assert a.tobytes() == b.tobytes()


def test_vq_keys_in_shards_take_precedence(tiny_dir: Path, tmp_path: Path) -> None:
    """Shards carry model.vqvae.*: those tensors are used even if vqvae/'s weights file is gone."""
    folder = copy_of(tiny_dir, tmp_path)
    (folder / "vqvae" / "diffusion_pytorch_model.safetensors").unlink()
    ckpt = load_checkpoint(folder)
    shard_sd = {}
    for name in json.loads((folder / INDEX_FILE).read_text())["weight_map"].values():
        shard_sd.update(load_file(folder / name))
    key = "encoder.conv_in.weight"
    assert torch.equal(ckpt.vq.model.state_dict()[key], shard_sd["model.vqvae." + key])


def test_no_vq_anywhere_names_the_path(tiny_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(tiny_dir, tmp_path)
    edit_shards(folder, strip_vq)
    (folder / "vqvae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="vqvae/diffusion_pytorch_model.safetensors: missing"):
        load_checkpoint(folder)


def test_vq_tensors_without_vq_config(tiny_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(tiny_dir, tmp_path)
    (folder / "vqvae" / "config.json").unlink()
    with pytest.raises(CheckpointError, match="vqvae/config.json"):
        load_checkpoint(folder)
