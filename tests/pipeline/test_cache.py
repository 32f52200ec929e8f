"""The text decoder's two layouts (LaVida-O `generate.py:217-390`, `prefix_lm`), against one pass
over prompt + answer built here by running the blocks by hand with eager attention and an explicit
mask, one unpadded row at a time: against the prompt's cache (`prefix_lm=True`) the prompt cannot
see the answer; decoding the whole sequence (`prefix_lm=False`) it can."""
from __future__ import annotations

import torch
from lavida_bench.model.network import Masks, rope_tables

from tests.pipeline import expected
from tests.pipeline.conftest import picture

GEN_LEN = 8


def reference_logits(pipe, prompt: torch.Tensor, answer: torch.Tensor, prompt_sees_answer: bool) -> torch.Tensor:
    """Blocks run by hand over one sequence [prompt; answer]; text logits of the answer rows."""
    net = pipe.net
    n, m = prompt.shape[0], answer.shape[0]
    x = torch.cat([prompt, answer])[None]
    allowed = torch.ones(n + m, n + m, dtype=torch.bool)
    if not prompt_sees_answer:
        allowed[:n, n:] = False
    masks = Masks(allowed[None, None], allowed[None, None])
    rope = rope_tables(torch.arange(n + m)[None], net.config.head_dim, net.config.rope_theta)
    for block in net.model.transformer.blocks:
        x, _ = block(x, None, rope, masks, None, "eager")
    return net.text_logits(net.model.transformer.ln_f(x))[0, n:].float()


def decoded_and_reference(pipe, captured_logits_fn, prompt_sees_answer: bool):
    """(the decoder's logits, the hand-built ones) for two rows of different length (the shorter
    one padded in the batch), at a mid-decoding answer state."""
    questions, images = ["What is it?", "How many dogs are in the picture?"], [picture(64, 64, 1), picture(96, 48, 2)]
    rows = [pipe.builder.row(expected.understand(q), pipe.builder.image_features([pipe.parts.tiles(im)]))
            for q, im in zip(questions, images)]
    assert len(rows[0].ids) != len(rows[1].ids)
    pipe.text.decode(rows, GEN_LEN, GEN_LEN, 0.0, [1, 2])
    gen = torch.Generator().manual_seed(0)
    answer = torch.randint(0, 200, (2, GEN_LEN), generator=gen)
    answer[:, ::2] = pipe.ids.mask  # some slots filled, some masked
    got = captured_logits_fn["fn"](answer)
    batch = pipe.builder.batch(rows)
    want = [reference_logits(pipe, batch.embeds[r, : len(row.ids)], pipe.net.embed_text(answer[r]), prompt_sees_answer)
            for r, row in enumerate(rows)]
    return got, torch.stack(want)


def test_cached_prefix_equals_masked_recompute(pipe, captured_logits_fn):
    got, want = decoded_and_reference(pipe, captured_logits_fn, prompt_sees_answer=False)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_whole_sequence_decoding_lets_the_prompt_see_the_answer(pipe, captured_logits_fn, monkeypatch):
    """`prefix_lm=False`: the layout the world trainer trains (and the release's non-prefix path)."""
    cached, _ = decoded_and_reference(pipe, captured_logits_fn, prompt_sees_answer=False)
    monkeypatch.setattr(pipe.parts, "prefix_lm", False)
    got, want = decoded_and_reference(pipe, captured_logits_fn, prompt_sees_answer=True)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert (got - cached).abs().max() > 1e-3  # the two layouts differ
