"""The exact sequences the pipeline builds, against the release's strings (LaVida-O
`predict_t2i_edit.py:209-272, 706-808`, `predict_grounding.py:57-101`) written out by hand in expected.py. Text decoding is scripted (see `ScriptedText`) so
plans and verdicts are known strings and the tests stay fast."""
from __future__ import annotations

import pytest
import torch

from lavida_bench.api import Options, Request
from lavida_bench.model.tokens import IMAGE_INDEX
from lavida_bench.model.vision import single_tile
from tests.pipeline import expected
from tests.pipeline.conftest import N_POS, STEPS, picture

PLAN = "<LOC_10><LOC_20><LOC_30><LOC_40>"


class ScriptedText:
    """Replaces `pipe.text.decode`: answers `gen_len` tokens spelling a fixed text per gen_len
    (64 = plan, 32 = verdict, predict_t2i_edit.py settings) padded with <|endoftext|>, and logs each call."""

    def __init__(self, pipe, texts: dict[int, str]):
        self.pipe, self.texts, self.calls = pipe, texts, []

    def __call__(self, rows, gen_len, block, temperature, seeds):
        self.calls.append((gen_len, block, temperature))
        ids = self.pipe.tokenizer(self.texts[gen_len]).input_ids
        ids = ids + [self.pipe.ids.eos] * (gen_len - len(ids))
        return torch.tensor([ids] * len(rows)), 0, 0


@pytest.fixture
def scripted(pipe, monkeypatch):
    def install(texts: dict[int, str]) -> ScriptedText:
        fake = ScriptedText(pipe, texts)
        monkeypatch.setattr(pipe.text, "decode", fake)
        return fake
    return install


def token(pipe, text: str) -> int:
    (tid,) = pipe.tokenizer(text).input_ids
    return tid


def after_image(row_ids: list[int]) -> int:
    """The id right after the (expanded) run of image-feature positions."""
    last = max(i for i, t in enumerate(row_ids) if t == IMAGE_INDEX)
    return row_ids[last + 1]


def test_t2i_prompt(pipe, rows):
    pipe.generate([Request("a", "generate", "a red cube", options=Options(steps=STEPS), seed=1)])
    assert rows.prompts == [expected.t2i("a red cube", N_POS)]
    assert rows.features == [[]]


def test_t2i_planning_prompt_and_plan_fed_to_drawing(pipe, rows, scripted):
    text = scripted({64: PLAN})
    result = pipe.generate([Request("a", "generate", "a red cube", options=Options(steps=STEPS, plan=True), seed=1)])[0]
    assert text.calls == [(64, 16, 0.5)]  # predict_t2i_edit.py:723-735: planning for T2I, 64 tokens, block 16, temperature 0.5
    assert rows.prompts == [expected.plan_t2i("a red cube"), expected.t2i("a red cube", N_POS, plan=PLAN)]
    assert result.trace.plan == PLAN
    # per-axis 0..1024 bins at 64 px: bin * 64 / 1024
    assert result.trace.plan_boxes == [[0.625, 1.25, 1.875, 2.5]]


def test_edit_prompt_and_source_slots(pipe, rows):
    pipe.edit([Request("a", "edit", "make it blue", images=[picture(80, 60, 1)], options=Options(steps=STEPS), seed=1)])
    assert rows.prompts == [expected.edit("make it blue", N_POS)]
    assert len(rows.features[0]) == 1  # the <image> slot: SigLIP features of the source
    built = rows.built[0].ids
    assert built.count(pipe.ids.source_image) == N_POS
    assert built.count(pipe.ids.gen_image) == N_POS
    assert built.count(IMAGE_INDEX) == rows.features[0][0].shape[0]
    # mm_utils.py:447-465: the BOS-first rule drops the space after `<image>`, so the VQ slots follow directly.
    assert after_image(built) == pipe.ids.source_image


def test_edit_planning_prompt(pipe, rows, scripted):
    text = scripted({64: PLAN})
    pipe.edit([Request("a", "edit", "make it blue", images=[picture(80, 60, 1)],
                       options=Options(steps=STEPS, plan=True), seed=1)])
    assert text.calls == [(64, 16, 0.0)]  # predict_t2i_edit.py:761-773: edit plans decode at temperature 0
    assert rows.prompts == [expected.plan_edit("make it blue"), expected.edit("make it blue", N_POS, plan=PLAN)]
    assert [len(f) for f in rows.features] == [1, 1]


def test_judge_prompt(pipe, rows, scripted):
    text = scripted({32: "the image is correct"})
    result = pipe.generate([Request("a", "generate", "a red cube", options=Options(steps=STEPS, reflect_rounds=2),
                                    seed=1)])[0]
    assert text.calls == [(32, 16, 0.0)]  # predict_t2i_edit.py:794-806: 32 tokens, block 16, temperature 0
    assert rows.prompts == [expected.t2i("a red cube", N_POS), expected.judge("a red cube")]
    assert [len(f) for f in rows.features] == [0, 1]
    assert result.trace.rounds == [{"round": 1, "verdict": "the image is correct", "passed": True}]


def test_grounding_prompt_keeps_apostrophe_and_four_masks(pipe, rows):
    pipe.ground([Request("a", "ground", "the left dog", images=[picture(80, 60, 2)], seed=1)])
    assert rows.prompts == [expected.grounding("the left dog")]
    built = rows.built[0].ids
    assert built[:2] == [token(pipe, "'"), pipe.ids.bos]
    assert built.count(pipe.ids.mask) == 4
    assert built[-7:] == [pipe.ids.loc_begin] + [pipe.ids.mask] * 4 + [pipe.ids.loc_end, pipe.ids.eot]
    # mm_utils.py:447-465 exception: the first id is not BOS, so nothing after `<image>` is dropped.
    assert after_image(built) == token(pipe, "\n")


def test_understand_prompt(pipe, rows, scripted):
    scripted({8: "a dog"})
    result = pipe.understand([Request("a", "understand", "What is it?", images=[picture(80, 60, 3)],
                                      options=Options(max_new_tokens=8), seed=1)])[0]
    assert rows.prompts == [expected.understand("What is it?")]
    assert result.text == "a dog"
    built = rows.built[0].ids
    assert after_image(built) == token(pipe, "W")  # mm_utils.py:447-465: the `\n` after `<image>` is dropped


def test_verdict_fed_back_as_the_release_decodes_it(pipe, rows, scripted):
    """predict_t2i_edit.py:807: special tokens kept, only <|eot_id|>, <|endoftext|> and
    <image_gen_fake> removed, no strip; the redraw prompt carries that text verbatim."""
    verdict = " the cube<|start_header_id|> is blue <|eot_id|>"
    scripted({32: verdict})
    result = pipe.generate([Request("a", "generate", "a red cube", options=Options(steps=STEPS, reflect_rounds=2),
                                    seed=1)])[0]
    kept = " the cube<|start_header_id|> is blue "
    assert [r["verdict"] for r in result.trace.rounds] == [kept, kept]
    assert rows.prompts[2] == expected.t2i("a red cube", N_POS, feedback=[kept])


def test_understand_several_images_as_plain_single_tiles(pipe, rows, scripted):
    """Several images: lmms-eval's adapter pads each to a square and stacks them; the release
    encodes that tensor on the plain path, one tile of tokens per image and no newline
    (llava_llada.py:512-531, llava_arch.py:434-440)."""
    scripted({8: "the left"})
    images = [picture(80, 60, 3), picture(48, 64, 4)]
    pipe.understand([Request("a", "understand", "Which one?", images=images,
                             options=Options(max_new_tokens=8), seed=1)])
    assert rows.prompts == [expected.chat("<image> <image>\nWhich one?")]
    plain = pipe.net.encode_tiles(torch.cat([single_tile(im, pipe.parts.tile).pixels for im in images]))
    features = rows.features[0]
    assert len(features) == 2
    assert all(f.shape[0] == 4 for f in features)  # tiny SigLIP: 56 px tile, 14 px patches, pool 2 -> 2x2
    assert all(torch.equal(f, p) for f, p in zip(features, plain))
