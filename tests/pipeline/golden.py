"""Golden outputs of the tiny model on fixed seeds: every capability, with planning and reflection.

`record(pipe)` runs a fixed set of requests and returns what came out at the model's edges: the
VQ codes handed to the decoder, the token ids handed to the tokenizer, and the results' text,
boxes, plans, verdicts and forward-pass counts. tests/pipeline/test_golden.py compares that with
golden.json, so a refactor of the pipeline, samplers or network cannot change an output unnoticed.

Regenerate (only when an output changes on purpose, and say why in the commit):
    .venv/bin/python -m tests.pipeline.golden
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from lavida_bench.api import Options, Request, Result

GOLDEN = Path(__file__).with_name("golden.json")
RESOLUTION = 64


def requests() -> dict[str, list[Request]]:
    from tests.pipeline.conftest import STEPS, picture

    draw = Options(steps=STEPS, plan=True, reflect_rounds=2)
    return {
        "generate": [Request("g0", "generate", "a red circle above a blue square", options=draw, seed=3),
                     Request("g1", "generate", "two green triangles", options=Options(steps=STEPS), seed=4)],
        "edit": [Request("e0", "edit", "make it blue", images=[picture(80, 64, 5)], options=draw, seed=6)],
        "understand": [Request("u0", "understand", "What is it?", images=[picture(64, 48, 7)],
                               options=Options(max_new_tokens=16), seed=8),
                       Request("u1", "understand", "Which is larger?",
                               images=[picture(64, 64, 9), picture(48, 80, 10)],
                               options=Options(max_new_tokens=16), seed=9)],
        "ground": [Request("r0", "ground", "the red circle", images=[picture(96, 64, 11)],
                           options=Options(steps=2), seed=12),
                   Request("r1", "ground", "the square", images=[picture(64, 64, 13)],
                           options=Options(steps=2), seed=14)],
    }


def summary(result: Result) -> dict[str, Any]:
    t = result.trace
    return {"text": result.text, "boxes": result.boxes, "plan": t.plan, "rounds": t.rounds,
            "nfe": t.nfe, "steps": t.steps, "stages": [[s.name, s.nfe] for s in t.stages],
            "attempts": len(result.attempts), "extra": t.extra}


def record(pipe: Any, monkeypatch: Any, only: str | None = None) -> dict[str, Any]:
    """Run the golden requests (of one capability with `only`); capture the decoded codes and
    token ids where they leave the model: at the VQ decoder and the tokenizer."""
    codes: list[list[int]] = []
    tokens: list[list[int]] = []
    decode_codes, decode_text = pipe.ck.vq.decode, pipe.tokenizer.decode

    def vq_decode(c: torch.Tensor, side: int):
        codes.extend(c.tolist())
        return decode_codes(c, side)

    def text_decode(ids, **kwargs):
        tokens.append(list(ids))
        return decode_text(ids, **kwargs)

    monkeypatch.setattr(pipe.ck.vq, "decode", vq_decode)
    monkeypatch.setattr(pipe.tokenizer, "decode", text_decode)
    out: dict[str, Any] = {}
    with torch.no_grad():
        for capability, batch in requests().items():
            if only not in (None, capability):
                continue
            codes.clear()
            tokens.clear()
            results = getattr(pipe, capability)(batch)
            out[capability] = {"results": [summary(r) for r in results], "codes": list(codes),
                               "tokens": list(tokens)}
    return out


def main() -> None:
    import tempfile

    import pytest

    from lavida_bench.model.checkpoint import load_checkpoint
    from lavida_bench.model.pipeline import LavidaPipeline
    from lavida_bench.model.tiny import make_tiny_checkpoint

    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        pipe = LavidaPipeline(load_checkpoint(make_tiny_checkpoint(Path(tmp), seed=0)), resolution=RESOLUTION)
        GOLDEN.write_text(json.dumps(record(pipe, mp), indent=1) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
