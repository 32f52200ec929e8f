"""Modality-aware expansion: an emitted expansion token becomes a drawn image block."""
from __future__ import annotations

import torch

from lavida_bench.api import Options, Request


def scripted_text(pipe, monkeypatch, tokens: list[int]) -> None:
    """Make text decoding return `tokens` for every row (1 prefix pass + len(tokens) steps)."""
    def fake(rows, gen_len, block, temperature, seeds):
        return torch.tensor([tokens] * len(rows)), 1 + len(tokens), len(tokens)
    monkeypatch.setattr(pipe.text, "decode", fake)


def test_expansion_token_draws_an_image_after_the_text_before_it(pipe, monkeypatch):
    ids = pipe.ids
    words = pipe.tokenizer("a red circle").input_ids
    scripted_text(pipe, monkeypatch, words + [ids.fake_image] + words)
    prompts: list[str] = []
    row = pipe.builder.row
    monkeypatch.setattr(pipe.builder, "row", lambda p, f: prompts.append(p) or row(p, f))
    [result] = pipe.interleave([Request("x", "generate", "draw something", options=Options(steps=4), seed=3)])
    assert result.image is not None and result.image.size == (64, 64)
    assert result.text == "a red circle"
    assert result.trace.extra == {"expanded": True, "expansion_at": len(words)}
    assert [s.name for s in result.trace.stages] == ["text", "draw1"]
    assert result.trace.stages[1].nfe == 4
    draw_prompt = prompts[-1]
    # the text before the expansion token sits in the assistant turn, followed by the image block
    assert "<|end_header_id|>\n\na red circle<|reserved_token_5|>" in draw_prompt


def test_no_expansion_token_means_text_only(pipe, monkeypatch):
    scripted_text(pipe, monkeypatch, pipe.tokenizer("just words").input_ids)
    [result] = pipe.interleave([Request("x", "generate", "say something", options=Options(steps=4), seed=3)])
    assert result.image is None and result.text == "just words"
    assert result.trace.extra["expanded"] is False
    assert [s.name for s in result.trace.stages] == ["text"]
