"""Loading and saving Lavida-O checkpoints in the release's on-disk layout (LaVida-O `llava/model/builder.py`, `llava/model/llava_arch.py:267-274`).

A checkpoint folder holds `config.json`, sharded safetensors with `model.safetensors.index.json`
(or one `model.safetensors`), the tokenizer files and `vqvae/` (diffusers `VQModel`). The VQ
weights may also sit in the shards as `model.vqvae.*`; both are accepted.

Loading builds the network on the meta device and assigns tensors read straight from the
safetensors onto the target device in the target dtype, so an 11B model in bf16 never
materialises in fp32 on the CPU. Key problems (missing, unexpected, wrongly shaped) are collected
into a report that names every key; strict loading refuses on any. No pickle anywhere.

The folder is untrusted input: every file the loader reads must resolve inside it (index entries
with `../` or absolute paths and symlinks leading out are refused), every JSON file must be UTF-8
JSON of the expected shape, and every failure is one `CheckpointError` line naming the file and
what was expected. Before any tensor data is read, the files are fingerprinted for the manifest
(`weights_fingerprint`), so a resume on swapped weights is refused.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lavida_bench.fingerprint import file_fingerprint, safetensors_fingerprint
from lavida_bench.jsonfile import json_type, read_json_file
from lavida_bench.model.config import LavidaConfig
from lavida_bench.api import CheckpointError
from lavida_bench.model.network import AttnImpl, LavidaNetwork
from lavida_bench.model.tokens import SpecialIds
from lavida_bench.model.vq import VQTokenizer, vq_from_config

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
VQ_PREFIX = "model.vqvae."
VQ_DIR = "vqvae"
VQ_WEIGHTS = "diffusion_pytorch_model.safetensors"
# lavida-bench's note of where a checkpoint's weights came from ({"weights": "random" | "trained", ...});
# not part of the release layout, so a released checkpoint has none and reads as {}.
PROVENANCE_FILE = "provenance.json"
TOKENIZER_JSON = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
TEXT_SUFFIXES = (".json", ".txt", ".model", ".jinja")  # config and tokenizer files: fingerprinted whole
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


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
    fingerprint: dict[str, Any] = field(default_factory=dict)  # weights_fingerprint, for the manifest
    provenance: dict[str, Any] = field(default_factory=dict)  # PROVENANCE_FILE, {} for a released checkpoint


# --- reading an untrusted folder ------------------------------------------------------------------
def one_line(err: BaseException, limit: int = 400) -> str:
    """An exception's message on one line (library messages span lines), cut at `limit` chars."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def containment_root(folder: Path) -> Path:
    """The folder every checkpoint file must resolve into: the checkpoint folder itself, or for a
    Hugging Face cache snapshot (`<repo>/snapshots/<rev>/`, whose files are symlinks into
    `<repo>/blobs/`) the cached repository `<repo>`."""
    real = folder.resolve()
    if real.parent.name == "snapshots" and (real.parent.parent / "blobs").is_dir():
        return real.parent.parent
    return real


def inside(folder: Path, name: str, named_by: str) -> Path:
    """`folder / name`, refused if it resolves outside the folder (`../`, an absolute path, a
    symlink leading out). `named_by` says where the name came from, for the error."""
    path = folder / name
    try:
        target, root = path.resolve(), containment_root(folder)
    except (OSError, ValueError) as err:  # a symlink loop, a NUL byte in the name
        raise CheckpointError(f"{named_by}: {name!r} cannot be resolved ({one_line(err)}); "
                              "expected a file name") from err
    if not target.is_relative_to(root):
        raise CheckpointError(f"{named_by}: {name!r} resolves to {target}, outside the checkpoint folder {root}; "
                              "expected every checkpoint file inside it")
    return path


def check_contained(folder: Path) -> None:
    """Every entry of the folder and of its vqvae/ (files the loader may read) stays inside."""
    for sub in (folder, folder / VQ_DIR):
        if sub.is_dir():
            for entry in sorted(sub.iterdir()):
                inside(folder, str(entry.relative_to(folder)), str(folder))


def weight_map(index: Path) -> dict[str, str]:
    """The index's tensor name -> shard file name mapping, type-checked."""
    expected = "a safetensors index: {\"weight_map\": {tensor name: shard file name}}"
    mapping = read_json_file(index, CheckpointError, expected=expected, want_object=True).get("weight_map")
    if not isinstance(mapping, dict):
        raise CheckpointError(f"{index}: 'weight_map' is {json_type(mapping)}; expected an object mapping "
                              "tensor names to shard file names")
    bad = next((k for k, v in mapping.items() if not isinstance(v, str)), None)
    if bad is not None:
        raise CheckpointError(f"{index}: weight_map[{bad!r}] is {json_type(mapping[bad])}; expected a shard file name")
    return mapping


def shard_files(folder: Path) -> dict[str, list[str]]:
    """file name -> keys it holds, from the index (or the single file). Missing files and names
    that lead outside the folder are errors."""
    index = folder / INDEX_FILE
    if index.is_file():
        files: dict[str, list[str]] = {}
        for key, fname in weight_map(index).items():
            files.setdefault(fname, []).append(key)
        for fname in files:
            inside(folder, fname, f"{index} (weight_map entry for {files[fname][0]})")
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
        raise CheckpointError(f"{path}: not a readable safetensors file ({one_line(err)}); "
                              "pickled weights are never loaded") from err


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


def meta_model(folder: str | Path, attn_implementation: AttnImpl = "sdpa") -> tuple[LavidaConfig, LavidaNetwork]:
    """Check the folder's containment, read config.json and build the network on the meta device
    (no memory): the first step of loading and of `model-info`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a folder; expected a checkpoint in the release layout")
    check_contained(folder)
    path = folder / "config.json"
    raw = read_json_file(path, CheckpointError, expected="the release's config.json (a JSON object)",
                         want_object=True)
    try:
        cfg = LavidaConfig.from_dict(raw, source=str(path))
        with torch.device("meta"):
            return cfg, LavidaNetwork(cfg, attn_implementation)
    except (TypeError, ValueError, KeyError, AttributeError) as err:  # wrongly typed values
        message = one_line(err)
        raise CheckpointError(message if message.startswith(str(path)) else
                              f"{path}: its values do not build a Lavida-O network ({message})") from err


def load_checkpoint(folder: str | Path, *, device: str = "cpu", dtype: torch.dtype | None = None,
                    attn_implementation: AttnImpl = "sdpa", strict: bool = True,
                    full_weights_hash: bool = False) -> Checkpoint:
    """Load a release-layout folder; `full_weights_hash` hashes every weight byte for the
    manifest instead of sampling (see `weights_fingerprint`)."""
    folder = Path(folder)
    cfg, network = meta_model(folder, attn_implementation)
    specs = tensor_specs(folder)
    report = check_keys(network, specs)  # refuse before reading any tensor data
    if strict and not report.ok:
        raise CheckpointError(f"{folder}: checkpoint keys do not match the model: {report.describe()}")
    vq_file = None if any(k.startswith(VQ_PREFIX) for k in specs) else vq_weights_file(folder)
    fingerprint = weights_fingerprint(folder, vq_file, full_weights_hash)
    tokenizer, ids = load_tokenizer(folder)
    tensors, vq_tensors = read_tensors(folder, device, dtype)
    network.load_state_dict({k: v for k, v in tensors.items() if k in network.state_dict()}, strict=False, assign=True)
    restore_buffers(network, device)
    network.eval().requires_grad_(False)
    vq = load_vq(folder, vq_tensors or read_vq_file(vq_file), device, dtype)
    return Checkpoint(network, vq, tokenizer, ids, cfg, report, folder, fingerprint, read_provenance(folder))


def weights_fingerprint(folder: Path, vq_file: Path | None, full: bool) -> dict[str, Any]:
    """File name -> fingerprint of everything the loader reads: every shard and the VQ weights
    (safetensors header + size + sampled or full data hash), the config and tokenizer files
    (hashed whole). Swapped weights between a run and its resume change it."""
    names = sorted(shard_files(folder)) + ([str(vq_file.relative_to(folder))] if vq_file else [])
    prints: dict[str, Any] = {name: safetensors_fingerprint(folder / name, full) for name in names}
    texts = [p for p in folder.iterdir() if p.suffix in TEXT_SUFFIXES] + [folder / VQ_DIR / "config.json"]
    for path in sorted(p for p in texts if p.is_file()):
        record = file_fingerprint(path)
        prints[str(path.relative_to(folder))] = {k: v for k, v in record.items() if k != "path"}
    return prints


def load_tokenizer(folder: Path) -> tuple[Any, SpecialIds]:
    """The folder's Hugging Face tokenizer and the release's special-token ids in it."""
    from transformers import AutoTokenizer

    for name in TOKENIZER_JSON:
        if (folder / name).exists():
            read_json_file(folder / name, CheckpointError, want_object=True,
                           expected="a Hugging Face tokenizer file (a JSON object)")
    try:
        with config_warning_silenced():
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        return tokenizer, SpecialIds.from_tokenizer(tokenizer)
    except Exception as err:  # tokenizers and transformers raise many types for malformed files
        raise CheckpointError(f"{folder / 'tokenizer.json'}: transformers cannot build the release's tokenizer from "
                              f"the folder's tokenizer files ({one_line(err)}); expected the release's "
                              "tokenizer.json and tokenizer_config.json") from err


@contextlib.contextmanager
def config_warning_silenced() -> Iterator[None]:
    """AutoTokenizer reads the release's config.json (model_type "llada") into a bare
    PretrainedConfig and transformers warns "You are using a model of type `llada` to instantiate
    a model of type ``" (configuration_utils.py, `PretrainedConfig.from_pretrained`): that config
    belongs to the network, not the tokenizer, so the warning says nothing; only it is muted."""
    from transformers.utils import logging as hf_logging

    logger = hf_logging.get_logger("transformers.configuration_utils")
    level = logger.level
    logger.setLevel(hf_logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def vq_weights_file(folder: Path) -> Path:
    """vqvae/diffusion_pytorch_model.safetensors, needed when the shards hold no model.vqvae.*."""
    path = folder / VQ_DIR / VQ_WEIGHTS
    if path.is_file():
        return path
    pickles = sorted(p.name for p in (folder / VQ_DIR).glob("*") if p.suffix in PICKLE_SUFFIXES)
    found = (f"; found {', '.join(pickles)}: pickled weights are never loaded, convert them to safetensors"
             if pickles else "")
    raise CheckpointError(f"{path}: missing (expected the release's {VQ_DIR}/ folder with config.json + {VQ_WEIGHTS}, "
                          f"or model.vqvae.* tensors in the shards){found}")


def read_vq_file(path: Path | None) -> dict[str, torch.Tensor]:
    if path is None:
        return {}
    with open_safetensors(path) as f:
        try:
            return {key: f.get_tensor(key) for key in f.keys()}
        except Exception as err:  # safetensors' own error type for data it cannot read
            raise CheckpointError(f"{path}: tensor data unreadable ({one_line(err)}); expected a complete "
                                  "safetensors file") from err


def load_vq(folder: Path, vq_tensors: dict[str, torch.Tensor], device: str, dtype: torch.dtype | None) -> VQTokenizer:
    """The diffusers VQModel of vqvae/config.json with the given tensors (strict)."""
    cfg_path = folder / VQ_DIR / "config.json"
    raw = read_json_file(cfg_path, CheckpointError, want_object=True,
                         expected="the VQ model's diffusers VQModel config (a JSON object)")
    try:
        model = vq_from_config(raw)
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(f"{cfg_path}: not a diffusers VQModel config ({one_line(err)})") from err
    try:
        model.load_state_dict(vq_tensors, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{folder}: the VQ tensors do not fit {cfg_path} ({one_line(err)})") from err
    # torch's own Module.to: diffusers' ModelMixin.to warns "modules ... should be kept in float32: []"
    # on every dtype cast even when that list is empty, as it is for VQModel (modeling_utils.py, `to`).
    return VQTokenizer(torch.nn.Module.to(model, device=device, dtype=dtype))


def read_provenance(folder: Path) -> dict[str, Any]:
    path = folder / PROVENANCE_FILE
    if not path.exists():  # a released checkpoint has none
        return {}
    return read_json_file(path, CheckpointError, expected="where the weights came from (a JSON object)",
                          want_object=True)


def save_checkpoint(folder: str | Path, network: LavidaNetwork, vq: VQTokenizer, tokenizer: Any,
                    provenance: dict[str, Any], shards: int = 2) -> Path:
    """Write a checkpoint in the release layout (used for tiny models in tests and the demo), with
    `provenance` (e.g. {"weights": "random", "seed": 0}) beside it, so that every run's trust facts
    can say what the model is."""
    folder = Path(folder)
    (folder / VQ_DIR).mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(network.config.to_release_dict(), indent=2))
    vq_sd = {k: v.contiguous() for k, v in vq.model.state_dict().items()}
    save_file(vq_sd, folder / VQ_DIR / VQ_WEIGHTS)
    (folder / VQ_DIR / "config.json").write_text(json.dumps(dict(vq.model.config), indent=2, default=list))
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
    (folder / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, sort_keys=True))
    return folder
