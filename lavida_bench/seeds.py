"""Per-sample seeds derived from identities, never from batch position or rank.

The seed depends on (run seed, task, sample id) and deliberately NOT on the variant: the plain,
planning and reflection variants of one prompt start from the same random numbers, which makes
their per-sample comparison paired (common random numbers) and their differences less noisy.
"""
from __future__ import annotations

import hashlib


def sample_seed(run_seed: int, task: str, sample_id: str) -> int:
    digest = hashlib.sha256(f"{run_seed}\x1f{task}\x1f{sample_id}".encode()).hexdigest()
    return int(digest[:15], 16)  # < 2**60, valid for torch.Generator.manual_seed
