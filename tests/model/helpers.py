"""Test helpers shared by the model tests."""
from __future__ import annotations

import torch
from lavida_bench.model.config import LavidaConfig
from lavida_bench.model.network import LavidaNetwork


def scrambled(cfg: LavidaConfig, seed: int = 0) -> LavidaNetwork:
    """A network whose every weight is informative: matrices ~ N(0, 1/fan_in) so attention is far
    from uniform, vectors (norm weights, biases) ~ 1 + N(0, 0.2^2) so a norm that ignores its
    weight, or multiplies the wrong slice of it, is visible."""
    net = LavidaNetwork(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 1:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5)
    return net.eval().requires_grad_(False)
