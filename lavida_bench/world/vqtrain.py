"""Training the VQ tokenizer on the world's images (the first stage of `train-world`).

Two phases, because a quantised autoencoder trained from scratch learns slowly on a CPU budget:
first the encoder and decoder as a plain autoencoder (AE_SHARE of the steps, reconstruction
MSE), then the codebook is set to encoder outputs of real images and the whole VQ is trained
with reconstruction MSE plus diffusers' commitment loss (straight-through gradients), codes
unused for RESTART_EVERY steps being moved onto random current encoder outputs (the usual guard
against codebook collapse).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lavida_bench.model.vq import VQTokenizer, vq_from_config
from lavida_bench.world.micro import WORLD_SIDE, micro_vq_config
from lavida_bench.world.scene import sample_scene

RESTART_EVERY = 100  # steps between dead-code restarts
AE_SHARE = 0.6  # share of the steps trained without quantisation


def world_batch(rng: np.random.Generator, n: int, side: int = WORLD_SIDE) -> torch.Tensor:
    """`n` random scenes as a [n, 3, side, side] tensor in [0, 1] (the VQ's input range)."""
    arrs = [np.asarray(sample_scene(rng, side).image(), dtype=np.float32) / 255.0 for _ in range(n)]
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)


def latents_of(model, x: torch.Tensor) -> torch.Tensor:
    """Pre-quantisation vectors `[N*h*w, dim]`."""
    z = model.quant_conv(model.encoder(x)) if getattr(model, "quant_conv", None) is not None else model.encoder(x)
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def restart_codes(model, x: torch.Tensor, used: torch.Tensor, gen: torch.Generator) -> int:
    """Move the codes not in `used` onto random encoder outputs of `x`; returns how many moved."""
    with torch.no_grad():
        z = latents_of(model, x)
        dead = (~used).nonzero().flatten()
        if dead.numel() == 0:
            return 0
        pick = torch.randint(0, z.shape[0], (dead.numel(),), generator=gen)
        noise = 0.01 * torch.randn(dead.numel(), z.shape[1], generator=gen)
        model.quantize.embedding.weight.data[dead] = z[pick] + noise
        return int(dead.numel())


def train_vq(seed: int, steps: int, batch: int = 8, lr: float = 1e-3,
             log: Callable[[int, dict[str, float]], None] | None = None) -> VQTokenizer:
    """A VQ trained for `steps` steps on fresh random scenes; `log(step, values)` sees the losses."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    model = vq_from_config(micro_vq_config()).train()
    used = torch.zeros(model.config.num_vq_embeddings, dtype=torch.bool)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ae_steps = int(AE_SHARE * steps)
    for step in range(1, steps + 1):
        for group in opt.param_groups:  # warm-up over 5% of the steps, then cosine decay to a tenth
            warm = min(1.0, step / max(1, 0.05 * steps))
            group["lr"] = lr * warm * (0.1 + 0.45 * (1 + np.cos(np.pi * step / steps)))
        x = world_batch(rng, batch)
        z = model.encode(x).latents
        if step <= ae_steps:
            recon = F.mse_loss(model.decoder(model.post_quant_conv(z)), x)
            loss = recon
        else:
            if step == ae_steps + 1:
                restart_codes(model, world_batch(rng, 128), used, gen)
            out = model.decode(z)
            recon = F.mse_loss(out.sample, x)
            loss = recon + out.commit_loss.mean()
            with torch.no_grad():
                _, _, (_, _, idx) = model.quantize(z)
                used[idx.flatten()] = True
            if (step - ae_steps) % RESTART_EVERY == 0 and step < steps * 0.9:
                restart_codes(model, x, used, gen)
                used[:] = False
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log is not None:
            log(step, {"vq_recon": float(recon.detach()), "vq_loss": float(loss.detach())})
    return VQTokenizer(model.eval())
