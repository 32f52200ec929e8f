"""Same seed, same output, whatever the batch: a request decoded alone equals the same request at
position 2 of a batch of 3 whose other members differ in prompt, image size and seed (so rows are
padded differently). Compared exactly: decoded tokens, boxes, and image bytes."""
from __future__ import annotations

import pytest
import torch

from lavida_bench.api import Options, Request
from tests.pipeline import expected
from tests.pipeline.conftest import STEPS, picture


@pytest.fixture
def text_tokens(pipe, monkeypatch):
    """Raw answer tokens of every `TextDecoder.decode` call (the decoded text of a random tiny model
    is often empty, which would make a text comparison vacuous)."""
    calls: list[torch.Tensor] = []
    original = pipe.text.decode

    def record(*args, **kwargs):
        tokens, nfe, steps = original(*args, **kwargs)
        calls.append(tokens.clone())
        return tokens, nfe, steps

    monkeypatch.setattr(pipe.text, "decode", record)
    return calls


def others(capability: str, options: Options, with_image: bool) -> list[Request]:
    """Two batch neighbours with other prompts, images and seeds."""
    return [Request(f"other{i}", capability, f"another, much longer request number {i}" * (i + 1),
                    images=[picture(40 + 24 * i, 72 - 8 * i, 50 + i)] if with_image else [],
                    options=options, seed=100 + i) for i in range(2)]


def alone_and_batched(call, target: Request, neighbours: list[Request]):
    alone = call([target])[0]
    batched = call(neighbours + [target])
    return alone, batched


def test_understand(pipe, text_tokens):
    options = Options(max_new_tokens=8)
    target = Request("t", "understand", "What is it?", images=[picture(64, 64, 1)], options=options, seed=7)
    alone, batched = alone_and_batched(pipe.understand, target, others("understand", options, True))
    assert torch.equal(text_tokens[0][0], text_tokens[1][2])
    assert alone.text == batched[2].text


def test_seeded_text_decoding_at_temperature(pipe):
    """Understanding decodes at temperature 0, where the tiny model answers alike whatever it is
    asked; plans decode at 0.5 (predict_t2i_edit.py:723-735), where the per-request generators matter."""
    captions = ["a red cube", "two dogs", "a very long caption about a busy street at night"]
    rows = [pipe.builder.row(expected.plan_t2i(c), []) for c in captions]
    seeds = [11, 12, 13]
    alone, _, _ = pipe.text.decode(rows[2:], 16, 16, 0.5, seeds[2:])
    batched, _, _ = pipe.text.decode(rows, 16, 16, 0.5, seeds)
    assert torch.equal(alone[0], batched[2])
    reseeded, _, _ = pipe.text.decode(rows[2:], 16, 16, 0.5, [14])
    assert not torch.equal(reseeded[0], alone[0])


@pytest.mark.parametrize("steps", [1, 2])
def test_ground(pipe, steps):
    options = Options(steps=steps)
    target = Request("t", "ground", "the dog", images=[picture(80, 60, 2)], options=options, seed=7)
    alone, batched = alone_and_batched(pipe.ground, target, others("ground", options, True))
    assert alone.trace.extra["raw_tokens"] == batched[2].trace.extra["raw_tokens"]
    assert alone.boxes == batched[2].boxes




@pytest.fixture(scope="module")
def drawn(pipe) -> dict[str, tuple]:
    """For generate and edit: (alone result, batched results, codes alone, codes batched), with
    the sampled VQ codes captured from the image sampler; computed once for the module."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        codes: list[torch.Tensor] = []
        original = pipe.drawer.sample

        def record(*args, **kwargs):
            result, steps = original(*args, **kwargs)
            codes.append(result.clone())
            return result, steps

        mp.setattr(pipe.drawer, "sample", record)
        image = {"generate": [], "edit": [picture(80, 64, 3)]}
        for capability, call in (("generate", pipe.generate), ("edit", pipe.edit)):
            options = Options(steps=STEPS if capability == "generate" else 3)
            target = Request("t", capability, "a red cube", images=image[capability], options=options, seed=7)
            alone, batched = alone_and_batched(call, target, others(capability, options, capability == "edit"))
            out[capability] = (alone, batched, codes[-2], codes[-1])
    return out


@pytest.mark.parametrize("capability", ["generate", "edit"])
def test_drawn_codes(drawn, capability):
    _, _, codes_alone, codes_batched = drawn[capability]
    assert torch.equal(codes_alone[0], codes_batched[2])
    # not vacuous: the neighbours (other prompts and seeds) drew other codes
    assert not torch.equal(codes_batched[0], codes_batched[2])


@pytest.mark.parametrize("capability", ["generate", "edit"])
def test_drawn_image_bytes(drawn, capability):
    alone, batched, _, _ = drawn[capability]
    assert alone.image.tobytes() == batched[2].image.tobytes()


def test_generate_seed_matters(pipe, drawn):
    alone = drawn["generate"][0]
    reseeded = pipe.generate([Request("t", "generate", "a red cube", options=Options(steps=STEPS), seed=8)])[0]
    assert reseeded.image.tobytes() != alone.image.tobytes()
