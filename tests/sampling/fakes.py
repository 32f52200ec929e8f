"""Scripted stand-ins for the network: logits that are known, and a record of every call."""
from __future__ import annotations

import torch


class Scripted:
    """Returns the same logits [L, V] for every row and records the tokens of every call."""

    def __init__(self, logits: list[list[float]] | torch.Tensor):
        self.logits = torch.as_tensor(logits, dtype=torch.float32)
        self.calls: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.clone())
        return self.logits.expand(x.shape[0], -1, -1).clone()


class Sequenced(Scripted):
    """Returns logits[i] ([L, V]) on the i-th call."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        step = self.logits[len(self.calls)]
        self.calls.append(x.clone())
        return step.expand(x.shape[0], -1, -1).clone()


class RowContent:
    """Logits that depend on the row's own tokens only (like a network with no batch mixing)."""

    def __init__(self, length: int, vocab: int, n_ids: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.base = torch.randn(length, vocab, generator=g) * 2
        self.embed = torch.randn(n_ids, vocab, generator=g)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.base + self.embed[x].mean(dim=1, keepdim=True)  # [B, L, V]


def generators(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]
