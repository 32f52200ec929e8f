"""The plain (unoptimised) paths each optimisation is checked against, as network stand-ins.

Each class wraps a `LavidaNetwork` and is swapped into a pipeline with `swapped_network`, so the
production pipeline code runs unchanged and only the one optimisation under test is undone:

- `RecomputePrefix`: the prefix-LM text decoder (LaVida-O `generate.py:217-390`) encodes the prompt
  into a cache once per sample; this stand-in re-encodes it at every step instead. It is the same
  math (the prompt never attends to the answer, `prefix_lm`), so tokens must be identical.
- `SplitGuidance`: classifier-free guidance stacks its `ways` rows (uncond, [image-only,] cond)
  into one forward pass per step (LaVida-O predict_t2i_edit.py:421-611, 443-488); this stand-in runs each guidance branch in its own
  forward pass, as a batch-1 release loop would without stacking. Codes must be identical.

`image_only` (skip text rows after the joint blocks, modeling_llada.py:1107-1109 IGNORE_TEXT_LOSS) is a pipeline flag
and needs no stand-in.

`CachedImagePrompt` goes the other way: it is NOT the release's math. It encodes the rows before
the first image row once per draw and lets every step attend to that cache, so the prompt no
longer sees the image tokens in the joint blocks (modeling_llada.py:1084-1254). It exists to measure what such a cache
would buy; its images differ, and the comparison reports by how much.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lavida_bench.model.network import LavidaNetwork, Route, route_mask


class NetworkProxy:
    """Delegates everything to the wrapped network except `__call__`."""

    def __init__(self, network: LavidaNetwork):
        self._net = network

    def __getattr__(self, name: str) -> Any:
        return getattr(self._net, name)

    def __call__(self, embeds: Tensor, **kwargs: Any) -> Any:
        return self._net(embeds, **kwargs)


@dataclass
class DeferredPrefix:
    """What `RecomputePrefix` hands back instead of a cache: the prompt, to re-encode each step."""

    embeds: Tensor
    valid: Tensor | None


class RecomputePrefix(NetworkProxy):
    """Cache off: every decoding step runs the prompt again, then the answer on that fresh cache."""

    def __call__(self, embeds: Tensor, **kwargs: Any) -> Any:
        cache = kwargs.get("cache")
        if kwargs.get("use_cache") and cache is None and kwargs.get("gen_mask") is None:
            return embeds[:, :0], DeferredPrefix(embeds, kwargs.get("valid"))
        if isinstance(cache, DeferredPrefix):
            _, fresh = self._net(cache.embeds, valid=cache.valid, use_cache=True)
            kwargs["cache"] = fresh
        return self._net(embeds, **kwargs)


class SplitGuidance(NetworkProxy):
    """Unbatched CFG: an image forward pass over `ways * B` stacked rows becomes `ways` passes."""

    def __init__(self, network: LavidaNetwork, ways: int):
        super().__init__(network)
        self.ways = ways

    def __call__(self, embeds: Tensor, **kwargs: Any) -> Any:
        if kwargs.get("gen_mask") is None or embeds.shape[0] % self.ways or kwargs.get("cache") is not None:
            return self._net(embeds, **kwargs)
        b = embeds.shape[0] // self.ways
        hidden = []
        for k in range(self.ways):
            part = slice(k * b, (k + 1) * b)
            sliced = {key: (v[part] if isinstance(v, Tensor) and v.dim() >= 1 and v.shape[0] == embeds.shape[0]
                            else v) for key, v in kwargs.items()}
            sliced["gen_mask"] = Route.of(route_mask(kwargs["gen_mask"])[part])
            h, _ = self._net(embeds[part], **sliced)
            hidden.append(h)
        return torch.cat(hidden), None


class CachedImagePrompt(NetworkProxy):
    """Approximate prompt cache for image steps: rows before the first image row are encoded once
    (prefix-LM style) and reused while they stay the same; each step runs only the remaining rows."""

    def __init__(self, network: LavidaNetwork):
        super().__init__(network)
        self._prefix: Tensor | None = None
        self._cache: Any = None

    def __call__(self, embeds: Tensor, **kwargs: Any) -> Any:
        gen, valid = route_mask(kwargs.get("gen_mask")), kwargs.get("valid")
        if gen is None or kwargs.get("cache") is not None or kwargs.get("use_cache"):
            return self._net(embeds, **kwargs)
        first = int(gen.float().argmax(1).min())  # first image row (same layout in every row)
        if first == 0:
            return self._net(embeds, **kwargs)
        prefix = embeds[:, :first]
        if self._prefix is None or self._prefix.shape != prefix.shape or not torch.equal(self._prefix, prefix):
            pre_valid = valid[:, :first] if valid is not None else None
            _, self._cache = self._net(prefix, valid=pre_valid, use_cache=True)
            self._prefix = prefix.clone()
        rest = {k: (v[:, first:] if isinstance(v, Tensor) and v.dim() == 2 and v.shape[1] == embeds.shape[1] else v)
                for k, v in kwargs.items()}
        rest["gen_mask"] = gen[:, first:]
        rest["image_only"] = False  # the cached path runs all remaining rows
        hidden, _ = self._net(embeds[:, first:], cache=self._cache, **rest)
        return torch.cat([embeds[:, :first], hidden], dim=1), None


@contextlib.contextmanager
def swapped_part(pipe: Any, name: str, value: Any) -> Iterator[Any]:
    """Run `pipe` with its part `name` (an attribute of `pipe.parts`) set to `value`, restored after."""
    old = getattr(pipe.parts, name)
    setattr(pipe.parts, name, value)
    try:
        yield pipe
    finally:
        setattr(pipe.parts, name, old)


def swapped_network(pipe: Any, network: Any) -> contextlib.AbstractContextManager[Any]:
    """Run `pipe` with `network` in place of its own (pipeline and sequence builder)."""
    return swapped_part(pipe, "net", network)


def image_only(pipe: Any, on: bool) -> contextlib.AbstractContextManager[Any]:
    """Run `pipe` with the image-only decoupled blocks on or off."""
    return swapped_part(pipe, "image_only", on)


def compiled_steps(pipe: Any) -> contextlib.AbstractContextManager[Any]:
    """Run `pipe`'s denoising steps compiled (torch.compile, fullgraph) inside the block."""
    return swapped_part(pipe, "compile_steps", True)


@contextlib.contextmanager
def captured_codes(pipe: Any) -> Iterator[list[Tensor]]:
    """Every code grid `pipe`'s drawer samples inside the block, in order."""
    codes: list[Tensor] = []
    sample = pipe.drawer.sample

    def record(*args: Any, **kwargs: Any) -> Any:
        out, steps = sample(*args, **kwargs)
        codes.extend(out.detach().cpu().clone())
        return out, steps

    pipe.drawer.sample = record
    try:
        yield codes
    finally:
        del pipe.drawer.sample

