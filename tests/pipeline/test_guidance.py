"""Classifier-free guidance as the pipeline batches it (ImageDrawer.guided_logits).

One stacked forward over [uncond; cond] (T2I, LaVida-O `llava/eval/predict_t2i_edit.py:421-611`) or
[uncond; image-only; cond] (editing, `predict_t2i_edit.py:443-488`) must equal separate forward passes per row and per guidance variant,
combined by the formulas written out here. The rows each variant replaces by the text mask
embedding, and the rows routed to the generation branch, are read from the stacked input.

"Equal" means what batching guarantees: the same values up to float rounding (a kernel may sum in
another order at another batch size, about 1e-7 in fp32), hence the same greedy codes wherever the
best two candidates are not within that rounding of a tie (model/network.py).
"""
from __future__ import annotations

import pytest
import torch
from lavida_bench.model import prompts

from tests.pipeline import expected
from tests.pipeline.conftest import N_POS, RESOLUTION, picture

SIDE = RESOLUTION // 16  # tiny VQ: x16 downsampling
PLAN = "<LOC_10><LOC_20><LOC_30><LOC_40>"


def prefix_len(pipe, text: str) -> int:
    """Number of token positions of a text-only prompt prefix."""
    return len(pipe.tokenizer(text).input_ids)


def random_codes(pipe, batch: int, seed: int) -> torch.Tensor:
    """Codes with about half the positions still masked, like a mid-sampling state."""
    gen = torch.Generator().manual_seed(seed)
    cfg = pipe.ck.config
    codes = torch.randint(0, cfg.codebook_size, (batch, SIDE * SIDE), generator=gen)
    masked = torch.rand(batch, SIDE * SIDE, generator=gen) < 0.5
    return torch.where(masked, torch.full_like(codes, cfg.vq_mask_id), codes)


def assert_equal_up_to_rounding(got: torch.Tensor, want: torch.Tensor) -> None:
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def assert_same_codes_except_near_ties(got: torch.Tensor, want: torch.Tensor, tol: float) -> None:
    """argmax codes of logits [N, K] agree wherever `want`'s best two are more than 2 * tol apart."""
    top2 = want.topk(2, dim=-1).values
    clear = top2[:, 0] - top2[:, 1] > 2 * tol
    assert clear.any(), "every position is a near tie: the comparison would prove nothing"
    assert torch.equal(got.argmax(-1)[clear], want.argmax(-1)[clear])


def mask_embedding(pipe) -> torch.Tensor:
    return pipe.net.embed_text(torch.tensor([pipe.ids.mask]))[0]


def rows_equal_to(embeds: torch.Tensor, vector: torch.Tensor) -> list[int]:
    """Positions of a [L, d] sequence that hold exactly `vector`."""
    return torch.nonzero((embeds == vector).all(-1)).flatten().tolist()


def single_pass_logits(pipe, embeds: torch.Tensor, ids: list[int], route: torch.Tensor) -> torch.Tensor:
    """One unpadded sequence [L, d] through the network, `route` rows in the gen branch; code
    logits at its generated-image positions."""
    gen = torch.tensor([t == pipe.ids.gen_image for t in ids])
    hidden, _ = pipe.net(embeds[None], gen_mask=route[None])
    return pipe.net.code_logits(hidden[0, gen][None], SIDE)[0].float()


def with_codes(pipe, embeds: torch.Tensor, ids: list[int], codes: torch.Tensor) -> torch.Tensor:
    out = embeds.clone()
    gen = torch.tensor([t == pipe.ids.gen_image for t in ids])
    out[gen] = pipe.net.embed_codes(codes[None], SIDE)[0].to(out.dtype)
    return out


def run_stacked(pipe, forwards, logits_fn, codes):
    out = logits_fn(codes)
    assert len(forwards) == 1, "all guidance rows of a step go through ONE forward pass"
    embeds, kwargs = forwards.calls[0]
    return out, embeds, kwargs["gen_mask"].mask  # the pipeline passes a prebuilt network.Route


# --- text-to-image: [uncond; cond] --------------------------------------------------------------

@pytest.fixture
def t2i_batch(pipe):
    """Two rows of different lengths (so the shorter one is padded); the second carries a plan."""
    captions, plans = ["a red cube", "two small green dogs on a wooden bench"], ["", PLAN]
    texts = [expected.t2i(c, N_POS, plan=p) for c, p in zip(captions, plans)]
    rows = [pipe.builder.row(t, []) for t in texts]
    # Unconditional rows (predict_t2i_edit.py:136-704): through the user turn's <|eot_id|>; with a plan, everything
    # before the first image placeholder.
    user_ends = [expected.HEAD + expected.USER + "Generate an image with the caption:\n " + c + " "
                 + expected.MICRO_64 + expected.EOT for c in captions]
    masked = [prefix_len(pipe, user_ends[0]), prefix_len(pipe, user_ends[1] + expected.ASSISTANT + PLAN)]
    return rows, pipe.builder.batch(rows), masked


@pytest.mark.parametrize("cfg_override, scale", [(None, 4.0), (2.5, 2.5)])  # demo preset cfg 4 (1024_eval.yaml)
def test_t2i_stacked_pass_equals_separate_passes(pipe, forwards, t2i_batch, cfg_override, scale):
    rows, batch, masked = t2i_batch
    planned = torch.tensor([False, True])
    codes = random_codes(pipe, 2, seed=7)
    logits_fn = pipe.drawer.guided_logits(batch, planned, SIDE, None, pipe.parts.settings, cfg_override)
    guided, stacked, route = run_stacked(pipe, forwards, logits_fn, codes)
    assert stacked.shape[0] == 4 and route.shape[0] == 4  # twice the rows, one pass
    mask_vec = mask_embedding(pipe)
    for r, row in enumerate(rows):
        n = len(row.ids)
        gen = torch.tensor([t == pipe.ids.gen_image for t in row.ids])
        cond = with_codes(pipe, batch.embeds[r, :n], row.ids, codes[r])
        uncond = cond.clone()
        uncond[: masked[r]] = mask_vec
        # the unconditional row masks exactly positions 0..masked-1; padding is left alone
        assert rows_equal_to(stacked[r, :n], mask_vec) == list(range(masked[r]))
        assert_equal_up_to_rounding(stacked[r, :n], uncond)  # the stacked codes were embedded as a batch
        assert_equal_up_to_rounding(stacked[2 + r, :n], cond)
        assert torch.equal(route[r, :n], gen) and torch.equal(route[2 + r, :n], gen)
        assert not route[r, n:].any() and not route[2 + r, n:].any()
        l_cond = single_pass_logits(pipe, cond, row.ids, gen)
        l_uncond = single_pass_logits(pipe, uncond, row.ids, gen)
        reference = (1 + scale) * l_cond - scale * l_uncond
        torch.testing.assert_close(guided[r], reference, rtol=1e-4, atol=1e-4)
        assert_same_codes_except_near_ties(guided[r], reference, tol=1e-4 * (1 + reference.abs().max().item()))


def test_t2i_plan_and_assistant_header_masking(pipe, t2i_batch):
    """Without a plan the assistant header stays conditional; with one, the plan is masked too."""
    rows, batch, masked = t2i_batch
    first_gen = [row.ids.index(pipe.ids.gen_image) for row in rows]
    assert masked[0] < first_gen[0] - 1  # the plain row keeps `<|start_header_id|>assistant...`
    assert masked[1] == first_gen[1]  # the planned row masks everything before the first placeholder
    got = pipe.drawer.prompt_rows(batch, batch.mask_of(pipe.ids.gen_image), torch.tensor([False, True]))
    for r in range(2):
        assert torch.nonzero(got[r]).flatten().tolist() == list(range(masked[r]))


# --- editing: [uncond; image-only; cond] --------------------------------------------------------

def test_edit_three_rows_routing_and_guidance(pipe, forwards):
    source = picture(64, 64, 11)
    feats = pipe.builder.image_features([pipe.parts.tiles(source)])
    row = pipe.builder.row(expected.edit("make it blue", N_POS), feats)
    batch = pipe.builder.batch([row])
    src_codes = pipe.ck.vq.encode([source], RESOLUTION)
    src_embeds = pipe.net.embed_codes(src_codes, SIDE)
    codes = random_codes(pipe, 1, seed=3)
    settings = prompts.EDIT_SETTINGS
    logits_fn = pipe.drawer.guided_logits(batch, torch.tensor([False]), SIDE, src_embeds, settings, None)
    guided, stacked, route = run_stacked(pipe, forwards, logits_fn, codes)
    assert stacked.shape[0] == 3

    ids = torch.tensor(row.ids)
    gen, src = ids == pipe.ids.gen_image, ids == pipe.ids.source_image
    feature = ids < 0
    assert int(src.sum()) == N_POS and int(gen.sum()) == N_POS and int(feature.sum()) == feats[0].shape[0]
    mask_vec = mask_embedding(pipe)
    cond = with_codes(pipe, batch.embeds[0], row.ids, codes[0])
    cond[src] = src_embeds[0].to(cond.dtype)
    # uncond: everything through the user turn (system, SigLIP rows, source VQ rows, instruction)
    user_end = (ids == pipe.ids.eot).nonzero().flatten()[1].item()
    uncond = cond.clone()
    uncond[: user_end + 1] = mask_vec
    # image-only (edit_mode 0): every row but the source VQ rows masked; gen rows carry the codes
    image_only = torch.where((src | gen)[:, None], cond, mask_vec.expand_as(cond))
    for got, want in zip(stacked, (uncond, image_only, cond)):
        assert torch.equal(got, want)
    assert rows_equal_to(stacked[0], mask_vec) == list(range(user_end + 1))
    assert rows_equal_to(stacked[1], mask_vec) == torch.nonzero(~(src | gen)).flatten().tolist()
    assert torch.equal(stacked[2][feature], feats[0])  # SigLIP rows kept in the full condition
    # predict_t2i_edit.py:443-488 routing: source VQ rows go to the gen branch in image-only and cond rows only
    assert torch.equal(route[0], gen)
    assert torch.equal(route[1], gen | src) and torch.equal(route[2], gen | src)

    logits = [single_pass_logits(pipe, e, row.ids, m)
              for e, m in ((uncond, gen), (image_only, gen | src), (cond, gen | src))]
    g, gi = 1.2, 1.4  # llava/eval/1024_eval_edit.yaml
    c = (1 + gi) * logits[2] - gi * logits[1]
    reference = (1 + g) * c - g * logits[0]
    torch.testing.assert_close(guided[0], reference, rtol=1e-4, atol=1e-4)
    # a request's own scales (Options.cfg, Options.image_cfg) replace the yaml's; g = 1, gi = 0:
    # the image-only row drops out and (1+g)*cond - g*uncond remains
    overridden = pipe.drawer.guided_logits(batch, torch.tensor([False]), SIDE, src_embeds, settings, 1.0, 0.0)
    torch.testing.assert_close(overridden(codes)[0], 2 * logits[2] - logits[0], rtol=1e-4, atol=1e-4)
