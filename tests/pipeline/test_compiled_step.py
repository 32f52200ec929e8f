"""One denoising step (network + guidance + sampler transition) compiles as ONE graph with no
graph break (checked with torch._dynamo.explain on the real drawing path), and running it
compiled gives the eager codes; the same for one text step's network pass, in both layouts
(against the prompt cache and the whole sequence), with the eager answers. The inductor build
itself is measured by the speed suite's `compile` and `compile_text` comparisons; here graphs
run with the `aot_eager` backend to stay fast."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

import lavida_bench.model.drawer as drawer_module
import lavida_bench.model.text_decoder as text_decoder_module
from lavida_bench.api import Options, Request
from lavida_bench.speed.paths import captured_codes, compiled_steps
from tests.pipeline.conftest import picture


def requests(capability: str, steps: int) -> list[Request]:
    images = [picture(80, 64, 3)] if capability == "edit" else []
    return [Request("a", capability, "a red cube left of a ball", images=images, options=Options(steps=steps), seed=4),
            Request("b", capability, "two dogs", images=images, options=Options(steps=steps), seed=5)]


def explaining(explained: list) -> Callable[[Callable], Callable]:
    """A stand-in for a compile function: runs the function eagerly and appends
    torch._dynamo.explain's report of its first call to `explained`."""
    def wrap(fn: Callable) -> Callable:
        def first_call_explained(*args):
            if not explained:
                explained.append(torch._dynamo.explain(fn)(*args))
            return fn(*args)
        return first_call_explained
    return wrap


@pytest.mark.parametrize("capability", ["generate", "edit"])
def test_denoising_step_is_one_graph(pipe, monkeypatch, capability):
    explained = []
    monkeypatch.setattr(drawer_module, "compile_step", explaining(explained))
    with compiled_steps(pipe):
        getattr(pipe, capability)(requests(capability, 1))
    (report,) = explained
    assert report.graph_break_count == 0, [str(b.reason) for b in report.break_reasons]
    assert report.graph_count == 1


def test_compiled_step_gives_the_eager_codes(pipe, monkeypatch):
    reqs = requests("edit", 2)
    with captured_codes(pipe) as eager_codes:
        eager = pipe.edit(reqs)
    monkeypatch.setattr(drawer_module, "compile_step",
                        lambda fn: torch.compile(fn, fullgraph=True, dynamic=False, backend="aot_eager"))
    torch._dynamo.reset()
    with compiled_steps(pipe), captured_codes(pipe) as compiled_codes:
        compiled = pipe.edit(reqs)
    assert len(eager_codes) == len(compiled_codes) == 2
    assert all(torch.equal(a, b) for a, b in zip(eager_codes, compiled_codes))
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(eager, compiled))


def questions() -> list[Request]:
    """Two rows of different prompt lengths (the batch is padded), so padding is compiled too."""
    return [Request("q", "understand", "what is in the picture?", images=[picture(80, 64, 3)],
                    options=Options(max_new_tokens=8), seed=4),
            Request("r", "understand", "how many red objects are there on the left side of it?",
                    images=[picture(64, 96, 5)], options=Options(max_new_tokens=8), seed=5)]


@pytest.mark.parametrize("prefix_lm", [True, False])
def test_text_step_is_one_graph(pipe, monkeypatch, prefix_lm):
    explained = []
    monkeypatch.setattr(text_decoder_module, "compile_pass", explaining(explained))
    monkeypatch.setattr(pipe.parts, "prefix_lm", prefix_lm)
    with compiled_steps(pipe):
        pipe.understand(questions())
    (report,) = explained
    assert report.graph_break_count == 0, [str(b.reason) for b in report.break_reasons]
    assert report.graph_count == 1


def decoded_tokens(monkeypatch) -> list[torch.Tensor]:
    """Every answer-token tensor the text decoder returns from now on, in order."""
    tokens: list[torch.Tensor] = []
    decode = text_decoder_module.TextDecoder.decode

    def record(self, *args, **kwargs):
        out = decode(self, *args, **kwargs)
        tokens.append(out[0].clone())
        return out

    monkeypatch.setattr(text_decoder_module.TextDecoder, "decode", record)
    return tokens


@pytest.mark.parametrize("prefix_lm", [True, False])
def test_compiled_text_step_gives_the_eager_answers(pipe, monkeypatch, prefix_lm):
    monkeypatch.setattr(pipe.parts, "prefix_lm", prefix_lm)
    tokens = decoded_tokens(monkeypatch)
    eager = pipe.understand(questions())
    monkeypatch.setattr(text_decoder_module, "compile_pass",
                        lambda fn: torch.compile(fn, fullgraph=True, backend="aot_eager"))
    torch._dynamo.reset()
    with compiled_steps(pipe):
        compiled = pipe.understand(questions())
    assert len(tokens) == 2 and tokens[0].shape == (2, 8)
    assert torch.equal(tokens[0], tokens[1])
    assert [r.text for r in eager] == [r.text for r in compiled]


def test_prompts_of_new_lengths_reuse_a_dynamic_graph(pipe, monkeypatch):
    """A second prompt length compiles one graph with that dimension dynamic; later lengths reuse it
    (one graph per length would recompile, at minutes each on a CPU, for nearly every batch)."""
    from torch._dynamo.utils import counters

    monkeypatch.setattr(text_decoder_module, "compile_pass",
                        lambda fn: torch.compile(fn, fullgraph=True, backend="eager"))
    torch._dynamo.reset()
    counters.clear()
    with compiled_steps(pipe):
        for question in ("what", "what is it", "what is in the picture", "how many red objects are on the left"):
            pipe.understand([Request("q", "understand", question, options=Options(max_new_tokens=8), seed=1)])
    assert counters["stats"]["unique_graphs"] == 2
