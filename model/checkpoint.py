"""Loading and saving Lavida-O checkpoints in the release's on-disk layout (§1.1, §1.3, §11.1).

A checkpoint folder holds `config.json`, sharded safetensors with `model.safetensors.index.json`
(or one `model.safetensors`), the tokenizer files and `vqvae/` (diffusers `VQModel`). The VQ
weights may also sit in the shards as `model.vqvae.*`; both are accepted.

Loading builds the network on the meta device and assigns tensors read straight from the
safetensors onto the target device in the target dtype, so an 11B model in bf16 never
materialises in fp32 on the CPU. Key problems (missing, unexpected, wrongly shaped) are collected
into a report that names every key; strict loading refuses on any. No pickle anywhere.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lavida_bench.model.config import LavidaConfig
from lavida_bench.model.errors import CheckpointError
from lavida_bench.model.network import AttnImpl, LavidaNetwork
from lavida_bench.model.tokens import SpecialIds
from lavida_bench.model.vq import VQTokenizer, vq_from_config

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
VQ_PREFIX = "model.vqvae."


@dataclass
class KeyReport:
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "key: file [..] vs model [..]"

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 20) -> str:
        parts = []
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                           ("wrong shape", self.mismatched)):
            if keys:
                shown = ", ".join(keys[:limit]) + (f" ... (+{len(keys) - limit} more)" if len(keys) > limit else "")
                parts.append(f"{len(keys)} {name}: {shown}")
        return "; ".join(parts) or "all keys match"

    def to_json(self) -> dict[str, list[str]]:
        return {"missing": self.missing, "unexpected": self.unexpected, "mismatched": self.mismatched}


@dataclass
class Checkpoint:
    network: LavidaNetwork
    vq: VQTokenizer
    tokenizer: Any
    ids: SpecialIds
    config: LavidaConfig
    report: KeyReport
    folder: Path


def shard_files(folder: Path) -> dict[str, list[str]]:
    """file name -> keys it holds, from the index (or the single file). Missing files are errors."""
    index = folder / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as err:
            raise CheckpointError(f"{index}: not a safetensors index with a 'weight_map' ({err})") from err
        files: dict[str, list[str]] = {}
        for key, fname in weight_map.items():
            files.setdefault(fname, []).append(key)
    elif (folder / SINGLE_FILE).is_file():
        with open_safetensors(folder / SINGLE_FILE) as f:
            files = {SINGLE_FILE: list(f.keys())}
    else:
        raise CheckpointError(f"{folder}: no {INDEX_FILE} or {SINGLE_FILE} (expected the release's sharded safetensors)")
    absent = [name for name in files if not (folder / name).is_file()]
    if absent:
        raise CheckpointError(f"{folder}: shard file(s) named in {INDEX_FILE} are missing: {', '.join(sorted(absent))}")
    return files


def open_safetensors(path: Path, device: str | torch.device = "cpu"):
    """safe_open with an error that names the file (a pickle or a truncated file is refused unread)."""
    try:
        return safe_open(path, framework="pt", device=str(device))
    except Exception as err:  # safetensors raises its own SafetensorError for headers it cannot parse
        raise CheckpointError(f"{path}: not a readable safetensors file ({err}); pickled weights are never loaded") from err


def read_tensors(folder: Path, device: str | torch.device, dtype: torch.dtype | None) -> tuple[dict, dict]:
    """(model tensors, vq tensors) read shard by shard straight onto `device`."""
    model_sd: dict[str, torch.Tensor] = {}
    vq_sd: dict[str, torch.Tensor] = {}
    for fname, keys in shard_files(folder).items():
        with open_safetensors(folder / fname, device) as f:
            present = set(f.keys())
            lost = [k for k in keys if k not in present]
            if lost:
                raise CheckpointError(f"{folder / fname}: the index lists keys this shard lacks: {lost[:5]}")
            for key in keys:
                t = f.get_tensor(key)
                if key.startswith(VQ_PREFIX):
                    vq_sd[key[len(VQ_PREFIX):]] = t
                else:
                    model_sd[key] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
    return model_sd, vq_sd


def tensor_specs(folder: Path) -> dict[str, tuple[tuple[int, ...], bool]]:
    """key -> (shape, is floating point), read from the safetensors headers only (no tensor data)."""
    specs = {}
    for fname, keys in shard_files(folder).items():
        with open_safetensors(folder / fname) as f:
            lost = sorted(set(keys) - set(f.keys()))
            if lost:
                raise CheckpointError(f"{folder / fname}: {INDEX_FILE} lists keys this shard lacks: {lost[:5]}")
            for key in keys:
                sl = f.get_slice(key)
                specs[key] = (tuple(sl.get_shape()), sl.get_dtype().startswith(("F", "BF")))
    return specs


def check_keys(network: LavidaNetwork, specs: dict[str, tuple[tuple[int, ...], bool]]) -> KeyReport:
    """Compare the file's keys (without `model.vqvae.*`) to the network's state_dict."""
    specs = {k: v for k, v in specs.items() if not k.startswith(VQ_PREFIX)}
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    report = KeyReport(missing=sorted(set(expected) - set(specs)), unexpected=sorted(set(specs) - set(expected)))
    report.mismatched = sorted(f"{k}: file {list(specs[k][0])} vs model {list(shape)}"
                               for k, shape in expected.items() if k in specs and specs[k][0] != shape)
    report.mismatched += sorted(f"{k}: file holds a non-floating-point tensor"
                                for k in expected if k in specs and not specs[k][1])
    return report


def restore_buffers(network: LavidaNetwork, device: str | torch.device) -> None:
    """Non-persistent buffers are not in the file; rebuild the ones created on the meta device."""
    for module in network.modules():
        for name, buf in list(module.named_buffers(recurse=False)):
            if buf.is_meta:
                if name != "position_ids":
                    raise CheckpointError(f"cannot rebuild buffer {type(module).__name__}.{name} after meta init")
                module.register_buffer(name, torch.arange(buf.shape[-1], device=device).expand(buf.shape),
                                       persistent=False)


def load_checkpoint(folder: str | Path, *, device: str = "cpu", dtype: torch.dtype | None = None,
                    attn_implementation: AttnImpl = "sdpa", strict: bool = True) -> Checkpoint:
    from transformers import AutoTokenizer

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder / 'config.json'}: missing (expected the release's config.json)")
    cfg = LavidaConfig.from_json(folder / "config.json")
    with torch.device("meta"):
        network = LavidaNetwork(cfg, attn_implementation)
    report = check_keys(network, tensor_specs(folder))  # refuse before reading any tensor data
    if strict and not report.ok:
        raise CheckpointError(f"{folder}: checkpoint keys do not match the model: {report.describe()}")
    tensors, vq_tensors = read_tensors(folder, device, dtype)
    network.load_state_dict({k: v for k, v in tensors.items() if k in network.state_dict()}, strict=False, assign=True)
    restore_buffers(network, device)
    network.eval().requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return Checkpoint(network, load_vq(folder, vq_tensors, device, dtype), tokenizer,
                      SpecialIds.from_tokenizer(tokenizer), cfg, report, folder)


def load_vq(folder: Path, vq_tensors: dict[str, torch.Tensor], device: str, dtype: torch.dtype | None) -> VQTokenizer:
    if not vq_tensors:
        return VQTokenizer.from_folder(folder / "vqvae", dtype, device)
    cfg_path = folder / "vqvae" / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{cfg_path}: missing (the VQ config is needed to build model.vqvae.* tensors)")
    model = vq_from_config(json.loads(cfg_path.read_text()))
    try:
        model.load_state_dict(vq_tensors, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{folder}: model.vqvae.* tensors do not fit {cfg_path}: {err}") from err
    return VQTokenizer(model.to(device=device) if dtype is None else model.to(device=device, dtype=dtype))


def save_checkpoint(folder: str | Path, network: LavidaNetwork, vq: VQTokenizer, tokenizer: Any,
                    shards: int = 2) -> Path:
    """Write a checkpoint in the release layout (used for tiny models in tests and the demo)."""
    folder = Path(folder)
    (folder / "vqvae").mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(network.config.to_release_dict(), indent=2))
    vq_sd = {k: v.contiguous() for k, v in vq.model.state_dict().items()}
    save_file(vq_sd, folder / "vqvae" / "diffusion_pytorch_model.safetensors")
    (folder / "vqvae" / "config.json").write_text(json.dumps(dict(vq.model.config), indent=2, default=list))
    tensors = {k: v.contiguous() for k, v in network.state_dict().items()}
    tensors.update({VQ_PREFIX + k: v for k, v in vq_sd.items()})
    keys = list(tensors)
    per = -(-len(keys) // shards)
    weight_map = {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: tensors[k] for k in keys[i * per:(i + 1) * per]}
        save_file(part, folder / name, metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (folder / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    tokenizer.save_pretrained(folder)
    return folder
