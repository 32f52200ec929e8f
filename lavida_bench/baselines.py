"""Reference baselines behind the capability protocol, so every metric's floor is visible.

`ConstantModel` answers without looking: the first option letter (or the first word of the
prompt's options), a box covering the whole image, a flat grey image, and the unchanged source
image for edits. They cost nothing, so they also measure the harness' own overhead.
"""
from __future__ import annotations

import re
import time
from typing import Any

from PIL import Image

from lavida_bench.api import Request, Result, Trace

GREY = (128, 128, 128)
DEFAULT_RESOLUTION = 256
_OPTION = re.compile(r"^\(?([A-Z])[.)]\s", re.MULTILINE)


class ConstantModel:
    name = "constant"
    capabilities = frozenset({"understand", "ground", "generate", "edit"})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "reference baseline (constant answers)", "weights": None}

    def understand(self, requests: list[Request]) -> list[Result]:
        out = []
        for r in requests:
            m = _OPTION.search(r.prompt)
            out.append(self._result(text=m.group(1) if m else "0"))
        return out

    def ground(self, requests: list[Request]) -> list[Result]:
        return [self._result(boxes=[[0.0, 0.0, float(r.images[0].width), float(r.images[0].height)]])
                for r in requests]

    def generate(self, requests: list[Request]) -> list[Result]:
        out = []
        for r in requests:
            side = r.options.resolution or DEFAULT_RESOLUTION
            out.append(self._result(image=Image.new("RGB", (side, side), GREY)))
        return out

    def edit(self, requests: list[Request]) -> list[Result]:
        return [self._result(image=r.images[0].convert("RGB").copy()) for r in requests]

    @staticmethod
    def _result(**fields: Any) -> Result:
        start = time.perf_counter()
        return Result(**fields, trace=Trace(nfe=0, steps=0, latency_s=time.perf_counter() - start))
