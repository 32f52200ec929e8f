"""Process-group helpers for `torchrun`: one process per GPU, rank 0 merges and scores.

The only environment reads are torchrun's own RANK / WORLD_SIZE / LOCAL_RANK.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_world() -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not tdist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        tdist.init_process_group(backend)
    return World(rank=tdist.get_rank(), size=tdist.get_world_size(),
                 local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def barrier(world: World) -> None:
    if world.size > 1:
        tdist.barrier()


def shard(items: list, world: World) -> list:
    """Deterministic share of a sorted work list: every world-size-th item from this rank."""
    return items[world.rank::world.size]
