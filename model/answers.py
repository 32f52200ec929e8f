"""Text and box answers (LaVida-O `llava/model/language_model/llada/generate.py:217-390`,
`llava/eval/predict_grounding.py:57-101`): understanding, grounding and
interleaved answers, batched, each request with its own seeds."""
from __future__ import annotations

from typing import Callable, TypeVar

import torch
from torch import Tensor

from lavida_bench.model import prompts
from lavida_bench.model.drawer import DrawJob, ImageDrawer
from lavida_bench.model.parts import ModelParts
from lavida_bench.model.reflection import safe_plan
from lavida_bench.model.sampling.grounding import decode_positions, dequantize_box
from lavida_bench.model.stages import StageClock, stage_seed, trace_of
from lavida_bench.model.text_decoder import TextDecoder
from lavida_bench.model.tokens import chat_prompt, clean_decoded
from lavida_bench.model.vision import single_tile
from lavida_bench.api import Request, Result, Stage


T = TypeVar("T")


def shared(requests: list[Request], what: str, value_of: Callable[[Request], T]) -> T:
    """The one value of an option every request of a batch must share."""
    values = {value_of(r) for r in requests}
    if len(values) != 1:
        raise ValueError(f"a batch must share {what}")
    return values.pop()


class Answers:
    def __init__(self, parts: ModelParts, text: TextDecoder, drawer: ImageDrawer):
        self.parts, self.text, self.drawer = parts, text, drawer

    def understand(self, requests: list[Request]) -> list[Result]:
        p = self.parts
        gen_len = shared(requests, "max_new_tokens",
                         lambda r: r.options.max_new_tokens or prompts.UNDERSTAND_DEFAULT_TOKENS)
        with StageClock(p.device) as clock:
            rows = []
            for r in requests:
                # one image: anyres tiles; several: lmms-eval's adapter switches to padded single
                # tiles, encoded without a newline (SequenceBuilder.plain_features)
                feats = (p.builder.image_features([p.tiles(r.images[0])]) if len(r.images) == 1
                         else p.builder.plain_features([single_tile(im, p.tile) for im in r.images]))
                rows.append(p.builder.row(chat_prompt(prompts.understand_user(r.prompt, len(r.images))), feats))
            tokens, nfe, steps = self.text.decode(rows, gen_len, min(128, gen_len), 0.0,
                                                  [stage_seed(r.seed, "understand") for r in requests])
        share = clock.seconds / len(requests)
        return [Result(text=p.tokenizer.decode(t, skip_special_tokens=True).lstrip("!").strip(),
                       trace=trace_of([Stage("understand", nfe, share)], steps, p.device)) for t in tokens.tolist()]

    def ground(self, requests: list[Request]) -> list[Result]:
        """The RefCOCO prompt with four masked LOC slots, filled in `steps` full passes (predict_grounding.py:57-101)."""
        p = self.parts
        steps = shared(requests, "the grounding step count", lambda r: r.options.steps or 1)
        final = shared(requests, "the grounding output rule", lambda r: r.options.grounding_output or "last_pass")
        with StageClock(p.device) as clock:
            feats = p.builder.image_features([p.tiles(r.images[0]) for r in requests])
            batch = p.builder.batch([p.builder.row(prompts.grounding_prompt(r.prompt), [f])
                                     for r, f in zip(requests, feats)])
            slots = batch.mask_of(p.ids.mask)
            if not bool((slots.sum(1) == 4).all()):
                raise RuntimeError("grounding prompt must hold exactly four mask slots per row")
            rows = slots.reshape(-1).nonzero().squeeze(-1)  # the slots, found once
            d = batch.embeds.shape[-1]

            def logits_fn(x: Tensor) -> Tensor:
                embeds = batch.embeds.reshape(-1, d).index_copy(0, rows, p.net.embed_text(x).reshape(-1, d))
                hidden, _ = p.net(embeds.view_as(batch.embeds), valid=batch.attend)
                return p.net.text_logits(hidden.reshape(-1, d).index_select(0, rows).view(len(requests), 4, d)).float()

            masked = torch.full((len(requests), 4), p.ids.mask, device=p.device)
            tokens, trace = decode_positions(logits_fn, masked, steps=steps, mask_id=p.ids.mask, final=final)
        share = clock.seconds / len(requests)
        return [self._box(r, toks, trace_of([Stage("ground", trace.nfe, share)], trace.steps, p.device))
                for r, toks in zip(requests, tokens.tolist())]

    def _box(self, r: Request, toks: list[int], trace) -> Result:
        bins = [self.parts.ids.loc_value(t) for t in toks]
        w, h = r.images[0].size
        boxes = [dequantize_box(bins, w, h, self.parts.grounding_frame)] if None not in bins else []
        trace.extra.update({"loc_bins": bins, "raw_tokens": toks})
        if not boxes:
            trace.extra["parse_failure"] = True
        return Result(boxes=boxes, trace=trace)

    def interleave(self, requests: list[Request], max_new_tokens: int) -> list[Result]:
        """Modality-aware decoding of an interleaved answer: the text answer is decoded first;
        where it emits the expansion token (`<|reserved_token_7|>`, the release's collapsed image
        slot, llava/train/data/preprocess.py:181), that one token becomes a block of masked image tokens routed to the
        generation branch and is drawn with the text before it in the assistant turn, so the
        model's own text decides whether and where an image goes. The release itself never
        expands at inference (predict_t2i_edit.py:706-737); this follows the paper's description with the code's token."""
        p = self.parts
        for r in requests:
            self.drawer.check_resolution(r, edit=False)
        with StageClock(p.device) as clock:
            rows = [p.builder.row(chat_prompt(r.prompt), []) for r in requests]
            tokens, nfe, steps = self.text.decode(rows, max_new_tokens, 16, 0.0,
                                                  [stage_seed(r.seed, "understand") for r in requests])
        results, to_draw = [], []
        for r, toks in zip(requests, tokens.tolist()):
            cut = toks.index(p.ids.fake_image) if p.ids.fake_image in toks else None
            text = clean_decoded(p.tokenizer.decode(toks if cut is None else toks[:cut], skip_special_tokens=False))
            trace = trace_of([Stage("text", nfe, clock.seconds / len(requests))], steps, p.device)
            trace.extra.update({"expanded": cut is not None, "expansion_at": cut})
            results.append(Result(text=text, trace=trace))
            if cut is not None:
                to_draw.append((results[-1], DrawJob(r, plan=safe_plan(text))))
        if to_draw:
            drawn = self.drawer.draw([job for _, job in to_draw], False, 1)
            for (res, _), image in zip(to_draw, drawn.images):
                res.image = image
                res.trace.stages.append(Stage("draw1", drawn.nfe, drawn.seconds))
                res.trace.nfe += drawn.nfe
                res.trace.steps += drawn.steps
                res.trace.latency_s += drawn.seconds
        return results
