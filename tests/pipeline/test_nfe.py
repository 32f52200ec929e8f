"""Forward-pass accounting: counted by wrapping `pipe.net.forward`, compared with the trace.

Image generation makes exactly `steps` passes per draw, however many guidance rows ride in each
(LaVida-O `predict_t2i_edit.py:421-611`: CFG doubles the rows, not the passes); one-step grounding is
one pass (`predict_grounding.py:57-101`); understanding is one prefix pass plus one pass per decoding
step (`generate.py:217-390`, prefix cache).
"""
from __future__ import annotations

import pytest

from lavida_bench.api import Options, Request
from tests.pipeline.conftest import picture


def stage_list(result) -> list[tuple[str, int]]:
    return [(s.name, s.nfe) for s in result.trace.stages]


@pytest.mark.parametrize("steps, n_requests", [(4, 1), (3, 2)])
def test_generate_makes_steps_passes_per_draw(pipe, forwards, steps, n_requests):
    requests = [Request(f"r{i}", "generate", f"caption {i}", options=Options(steps=steps), seed=i)
                for i in range(n_requests)]
    results = pipe.generate(requests)
    assert len(forwards) == steps
    assert [embeds.shape[0] for embeds, _ in forwards.calls] == [2 * n_requests] * steps  # [uncond; cond]
    for result in results:
        assert result.trace.nfe == steps and result.trace.steps == steps
        assert stage_list(result) == [("draw1", steps)]


def test_edit_makes_steps_passes_with_three_guidance_rows(pipe, forwards):
    request = Request("e", "edit", "make it blue", images=[picture(64, 48, 5)], options=Options(steps=3), seed=1)
    result = pipe.edit([request])[0]
    assert len(forwards) == 3
    assert [embeds.shape[0] for embeds, _ in forwards.calls] == [3, 3, 3]  # [uncond; image-only; cond]
    assert result.trace.nfe == 3 and stage_list(result) == [("draw1", 3)]


@pytest.mark.parametrize("steps", [1, 2])
def test_grounding_passes(pipe, forwards, steps):
    requests = [Request(f"g{i}", "ground", "the dog", images=[picture(48 + 16 * i, 40, i)],
                        options=Options(steps=steps), seed=i) for i in range(2)]
    results = pipe.ground(requests)
    assert len(forwards) == steps  # steps=1: the release's one-pass parallel decoding
    for result in results:
        assert result.trace.nfe == steps and result.trace.steps == steps
        assert stage_list(result) == [("ground", steps)]


def test_understand_is_one_prefix_pass_plus_steps(pipe, forwards):
    request = Request("u", "understand", "What is it?", images=[picture(64, 64, 9)],
                      options=Options(max_new_tokens=8), seed=1)
    result = pipe.understand([request])[0]
    # 8 tokens, block min(128, 8) = 8, one token per step (generate.py:217-390): 8 steps after the prefix pass
    assert len(forwards) == 1 + 8
    prefix_kwargs = forwards.calls[0][1]
    assert prefix_kwargs.get("use_cache") is True and prefix_kwargs.get("cache") is None
    for embeds, kwargs in forwards.calls[1:]:
        assert embeds.shape[1] == 8  # only the answer is re-run ...
        assert kwargs.get("cache") is not None  # ... against the prompt's cache
    assert result.trace.nfe == 9 and result.trace.steps == 8
    assert stage_list(result) == [("understand", 9)]
