"""Count and shape every network call a pipeline makes (exact NFE and the floor's inputs).

`record_passes(network)` wraps the network's entry points on the instance (the class is not
touched) for the duration of a `with` block. It reads shapes with host synchronisation, so the
suite uses it only on an untimed probe call, never inside a timed repeat.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from lavida_bench.model.network import LavidaNetwork, route_mask
from lavida_bench.speed.floor import Pass, RowShape


@dataclass
class Recording:
    passes: list[Pass] = field(default_factory=list)
    codes: list[Tensor] = field(default_factory=list)  # every code grid handed to the VQ decoder

    @property
    def forwards(self) -> list[Pass]:
        return [p for p in self.passes if p.kind == "forward"]

    @property
    def network_passes(self) -> int:
        """Transformer forward passes (what NFE counts; a CFG-batched pass is one)."""
        return len(self.forwards)

    @property
    def prefix_encodings(self) -> int:
        """Forward passes that built a prefix cache from scratch."""
        return sum(1 for p in self.forwards if p.prefix)

    def summary(self) -> dict[str, Any]:
        fw = self.forwards
        return {"network_passes": len(fw), "prefix_encodings": self.prefix_encodings,
                "siglip_tiles": sum(p.count for p in self.passes if p.kind == "encode_tiles"),
                "max_sequence": max((r.text + r.gen + r.cache for p in fw for r in p.rows), default=0),
                "first_pass_rows": [[r.text, r.gen, r.cache] for r in fw[0].rows] if fw else []}


def _forward_pass(embeds: Tensor, kwargs: dict[str, Any]) -> Pass:
    b, n = embeds.shape[:2]
    valid = kwargs.get("valid")
    valid = torch.ones(b, n, dtype=torch.bool) if valid is None else valid.cpu()
    gen = route_mask(kwargs.get("gen_mask"))
    gen = torch.zeros(b, n, dtype=torch.bool) if gen is None else gen.cpu() & valid
    cache = kwargs.get("cache")
    cached = cache.valid.sum(1).tolist() if cache is not None else [0] * b
    n_gen = gen.sum(1).tolist()
    n_text = (valid & ~gen).sum(1).tolist()
    image_only = bool(kwargs.get("image_only")) and any(n_gen) and cache is None
    rows = [RowShape(int(t), int(g), int(c)) for t, g, c in zip(n_text, n_gen, cached)]
    return Pass("forward", rows, image_only, prefix=bool(kwargs.get("use_cache")) and cache is None)


@contextlib.contextmanager
def record_passes(network: LavidaNetwork, vq: Any = None) -> Iterator[Recording]:
    """Record forward / head / SigLIP calls of `network` (and VQ decodes of `vq`) inside the block."""
    rec = Recording()
    originals: dict[str, Callable[..., Any]] = {}

    def wrap(obj: Any, name: str, record: Callable[..., None]) -> None:
        fn = getattr(obj, name)
        originals[f"{id(obj)}.{name}"] = fn

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            record(*args, **kwargs)
            return fn(*args, **kwargs)

        setattr(obj, name, wrapper)

    d = network.config.d_model
    wrap(network, "forward", lambda embeds, **kw: rec.passes.append(_forward_pass(embeds, kw)))
    wrap(network, "text_logits", lambda hidden: rec.passes.append(Pass("text_logits", count=hidden.numel() // d)))
    # every code's logits are computed even when only some are kept (`at`): count them all
    wrap(network, "code_logits",
         lambda hidden, side, at=None: rec.passes.append(Pass("code_logits", count=hidden.shape[0] * side * side)))
    wrap(network, "embed_codes", lambda codes, side: rec.passes.append(Pass("embed_codes", count=codes.numel())))
    wrap(network, "encode_tiles", lambda pixels: rec.passes.append(Pass("encode_tiles", count=pixels.shape[0])))
    if vq is not None:
        wrap(vq, "decode", lambda codes, side: rec.codes.append(codes.detach().cpu().clone()))
    try:
        yield rec
    finally:
        for obj in (network, vq):
            if obj is None:
                continue
            for name in ("forward", "text_logits", "code_logits", "embed_codes", "encode_tiles", "decode"):
                if f"{id(obj)}.{name}" in originals:
                    delattr(obj, name)
