"""Lavida-O with random weights at any size, built straight on the target device (no checkpoint).

Latency does not depend on weight values, so the speed suite may time a randomly initialised
network at the official size (8B understanding + 2.4B generation, arXiv 2509.19244) on a GPU
without the 20 GB release on disk. Everything except the weights is the real thing: the same
`LavidaNetwork`, the same `LavidaPipeline`, the same samplers. Differences, all labelled in the
suite's output:

- the tokenizer is the tiny tokenizer (model.tiny.tiny_tokenizer) with the release's special and
  LOC tokens; it yields about one token per word, close to but not equal to LLaDA's BPE, so text
  prompt lengths differ slightly from the release's (the suite records the lengths it ran);
- the VQ model is a randomly initialised diffusers VQModel: the tiny one for tiny sizes; for the
  official size the release's VQ config is not derivable from the code (only its x16 downsampling and 8192 codes are), so a stand-in
  with the training script's block_out_channels [128, 256, 256, 512, 768] (datasets.py:561-569) and
  the x16 downsampling / 8192 codes the release uses.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import torch

from lavida_bench.model.checkpoint import Checkpoint, KeyReport
from lavida_bench.model.config import LavidaConfig, VisionConfig
from lavida_bench.model.network import LavidaNetwork
from lavida_bench.model.pipeline import LavidaPipeline
from lavida_bench.model.tiny import tiny_tokenizer
from lavida_bench.model.tokens import SpecialIds
from lavida_bench.model.vq import VQTokenizer, tiny_vq_config, vq_from_config

PRESETS = ("tiny", "small", "official")
INIT_STD = 0.02  # the release's init_std (config.json), keeps random activations finite


def model_config(preset: str, vocab_size: int) -> LavidaConfig:
    """Network config of a size preset. `small` sits between tiny and official: big enough that
    matmuls dominate on a CPU, small enough to run the suite in minutes."""
    if preset == "tiny":
        return LavidaConfig.tiny(vocab_size=vocab_size)
    if preset == "official":
        return LavidaConfig.official()
    if preset == "small":
        tiny = LavidaConfig.tiny(vocab_size=vocab_size)
        raw = tiny.to_release_dict()
        raw.update({"d_model": 512, "n_heads": 8, "n_kv_heads": 8, "n_layers": 8, "mlp_hidden_size": 1536,
                    "d_model_gen": 256, "mlp_hidden_size_gen": 1024, "dual_tower_layers": 3,
                    "mm_hidden_size": 128, "vision_config": asdict(VisionConfig(
                        hidden_size=128, intermediate_size=512, num_layers=4, num_heads=4, patch_size=14,
                        image_size=112)),
                    "image_grid_pinpoints": [[112, 224], [224, 112], [224, 224], [336, 112], [112, 336]]})
        return LavidaConfig.from_dict(raw, "small")
    raise ValueError(f"model preset {preset!r}: choose one of {', '.join(PRESETS)}")


def vq_config(preset: str, codebook_size: int) -> dict:
    if preset == "official":
        cfg = tiny_vq_config(codebook_size)
        # stand-in geometry (LaVida-O llava/train/data/datasets.py:561-569); widths are the cost driver
        cfg.update({"block_out_channels": [128, 256, 256, 512, 768], "layers_per_block": 2,
                    "latent_channels": 64, "vq_embed_dim": 64, "norm_num_groups": 32})
        return cfg
    return tiny_vq_config(codebook_size)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Create parameters directly in `dtype` (an 11B model never materialises in fp32)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@torch.no_grad()
def randomize(module: torch.nn.Module, seed: int) -> None:
    """N(0, INIT_STD) weights, unit norm scales, zero biases, drawn on the module's own device."""
    for name, p in module.named_parameters():
        gen = torch.Generator(device=p.device).manual_seed(seed)
        seed += 1
        if p.ndim == 1 and ("norm" in name or name.endswith("weight")):
            p.fill_(1.0)
        elif name.endswith("bias"):
            p.zero_()
        else:
            p.normal_(0.0, INIT_STD, generator=gen)


def random_checkpoint(preset: str = "tiny", *, device: str = "cpu", dtype: torch.dtype = torch.float32,
                      seed: int = 0, attn_implementation: str = "sdpa") -> Checkpoint:
    """A Checkpoint (network, VQ, tokenizer, ids) with random weights, built on `device`."""
    tokenizer = tiny_tokenizer()
    cfg = model_config(preset, len(tokenizer))
    if cfg.vocab_size < len(tokenizer):
        raise ValueError(f"model preset {preset}: vocab {cfg.vocab_size} < tokenizer size {len(tokenizer)}")
    with default_dtype(dtype), torch.device(device):
        network = LavidaNetwork(cfg, attn_implementation)  # type: ignore[arg-type]
    randomize(network, seed)
    network.eval().requires_grad_(False)
    with torch.random.fork_rng(devices=[]):  # diffusers' own init, drawn from `seed`: runs repeat
        torch.manual_seed(seed)
        vq_model = vq_from_config(vq_config(preset, cfg.codebook_size))
    # torch's Module.to: diffusers' ModelMixin.to warns on every dtype cast (see model/checkpoint.py load_vq)
    vq = VQTokenizer(torch.nn.Module.to(vq_model, device=device, dtype=dtype))
    return Checkpoint(network, vq, tokenizer, SpecialIds.from_tokenizer(tokenizer), cfg, KeyReport(),
                      Path(f"random-weights:{preset}:seed{seed}"))


def random_pipeline(preset: str = "tiny", *, device: str = "cpu", dtype: torch.dtype = torch.float32,
                    seed: int = 0, resolution: int = 1024, image_settings: str = "demo_1024",
                    attn_implementation: str = "sdpa") -> LavidaPipeline:
    """The production pipeline over a random-weight checkpoint (labelled in `describe()`)."""
    ck = random_checkpoint(preset, device=device, dtype=dtype, seed=seed, attn_implementation=attn_implementation)
    pipe = LavidaPipeline(ck, image_settings=image_settings, resolution=resolution, dtype=dtype)
    return pipe

