"""Lavida-O as the harness calls it: batched `understand / ground / generate / edit`.

Composes the network (network.py), the samplers (sampling/) and the release's prompts
(prompts.py) into the official inference procedures (lavida-o-model.md §6):

- understand: text masked diffusion with the prompt in a prefix cache (computed once);
- ground: the RefCOCO prompt with four masked LOC slots, decoded in `steps` full passes (1 = the
  release's one-step parallel decoding);
- generate / edit: image masked diffusion with classifier-free guidance, all guidance rows of a
  batch in ONE forward pass per step; optional planning (layout in LOC tokens first, fed to the
  drawing turn) and self-reflection (the understanding branch judges, failures condition redraws).

Every request gets its own random generators seeded from `Request.seed` and the stage, so a
result does not depend on batch size, batch position or which other requests share the batch.
Traces record each stage's forward passes and device-synchronised wall time (a batched stage's
time is shared equally by its requests).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from PIL import Image
from torch import Tensor

from lavida_bench.model import prompts
from lavida_bench.model.checkpoint import Checkpoint, load_checkpoint
from lavida_bench.model.sampling.grounding import dequantize_box
from lavida_bench.model.sampling.guidance import cfg as guide_cfg
from lavida_bench.model.sampling.guidance import edit_guidance
from lavida_bench.model.sampling.image import sample_image
from lavida_bench.model.sampling.text import sample_text
from lavida_bench.model.sequences import Batch, Row, SequenceBuilder
from lavida_bench.model.tokens import chat_prompt, clean_decoded, parse_boxes
from lavida_bench.model.vision import anyres_tiles, center_crop, single_tile
from lavida_bench.protocol import Request, Result, Stage, Trace

STAGE_SEEDS = {"plan": 1, "draw": 2, "judge": 3, "understand": 4, "ground": 5, "feedback": 6}


def stage_seed(seed: int, stage: str, round_: int = 0) -> int:
    return (seed * 1_000_003 + STAGE_SEEDS[stage] * 10_007 + round_) % (2**63)


@dataclass
class DrawJob:
    """One image to draw: a caption (T2I) or instruction + source (edit), with plan and feedback."""

    request: Request
    plan: str = ""
    feedback: list[tuple[Image.Image, str]] = field(default_factory=list)
    source: Image.Image | None = None  # cropped source image (edit)


class StageClock:
    """Device-synchronised wall time of one batched stage."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self) -> "StageClock":
        self._sync()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self.start

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class LavidaPipeline:
    name = "lavida_o"
    capabilities = frozenset({"understand", "ground", "generate", "edit"})

    def __init__(self, checkpoint: Checkpoint, *, image_settings: str = "demo_1024", resolution: int = 1024,
                 grounding_frame: str = "pad_square", dtype: torch.dtype | None = None,
                 image_only: bool = True):
        if image_settings not in prompts.IMAGE_SETTINGS:
            raise ValueError(f"image_settings {image_settings!r}: choose one of {sorted(prompts.IMAGE_SETTINGS)}")
        self.ck = checkpoint
        self.net, self.ids, self.tokenizer = checkpoint.network, checkpoint.ids, checkpoint.tokenizer
        self.settings = prompts.IMAGE_SETTINGS[image_settings]
        self.image_settings_name = image_settings
        self.resolution = resolution
        self.grounding_frame = grounding_frame
        self.image_only = image_only  # skip text rows after the joint blocks while drawing (same images)
        self.dtype = dtype or next(self.net.parameters()).dtype
        self.builder = SequenceBuilder(self.net, self.tokenizer, self.ids.bos, self.ids.eos)
        vis = checkpoint.config.vision
        self.tile = vis.image_size
        self.pinpoints = checkpoint.config.image_grid_pinpoints

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Any) -> "LavidaPipeline":
        """Build from the harness's ModelConfig (checkpoint folder, device, dtype, settings)."""
        device = "cuda" if cfg.device == "auto" and torch.cuda.is_available() else (
            "cpu" if cfg.device == "auto" else cfg.device)
        dtype = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32,
                 "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[cfg.dtype]
        if device == "cpu" and cfg.cpu_threads:
            # tiny models on a small CPU spend most time in thread hand-offs (measured 1.3 s vs 81 s
            # for two 64-step tiny images on a loaded 2-core machine); one thread avoids that
            torch.set_num_threads(cfg.cpu_threads)
        ck = load_checkpoint(cfg.checkpoint, device=device, dtype=dtype, attn_implementation=cfg.attn_implementation)
        return cls(ck, image_settings=cfg.image_settings, resolution=cfg.resolution,
                   grounding_frame=cfg.grounding_frame, dtype=dtype)

    @property
    def device(self) -> torch.device:
        return self.builder.device

    def describe(self) -> dict[str, Any]:
        from lavida_bench.fingerprint import path_fingerprint

        folder = Path(self.ck.folder)
        return {"name": self.name, "checkpoint": str(folder),
                "fingerprint": {n: path_fingerprint(folder / n) for n in
                                ("config.json", "model.safetensors.index.json") if (folder / n).exists()},
                "config": self.ck.config.summary(), "image_settings": self.image_settings_name,
                "sampler": self.settings.__dict__, "resolution": self.resolution,
                "grounding_frame": self.grounding_frame, "dtype": str(self.dtype), "device": str(self.device),
                "attn_implementation": self.net.attn_implementation}

    def generators(self, seeds: Sequence[int]) -> list[torch.Generator]:
        return [torch.Generator(device=self.device).manual_seed(s) for s in seeds]

    # --- understanding ---------------------------------------------------------------------
    @torch.no_grad()
    def understand(self, requests: list[Request]) -> list[Result]:
        with StageClock(self.device) as clock:
            rows = []
            for r in requests:
                # one image: anyres tiles; several: lmms-eval's adapter switches to padded single tiles
                tiles = ([self._tiles(r.images[0])] if len(r.images) == 1
                         else [single_tile(im, self.tile) for im in r.images])
                feats = self.builder.image_features(tiles)
                rows.append(self.builder.row(chat_prompt(prompts.understand_user(r.prompt, len(r.images))), feats))
            gen_len = requests[0].options.max_new_tokens or prompts.UNDERSTAND_DEFAULT_TOKENS
            if any((r.options.max_new_tokens or prompts.UNDERSTAND_DEFAULT_TOKENS) != gen_len for r in requests):
                raise ValueError("a batch must share max_new_tokens")
            tokens, nfe, steps = self._decode_text(rows, gen_len, min(128, gen_len), 0.0,
                                                   [stage_seed(r.seed, "understand") for r in requests])
        texts = [self.tokenizer.decode(t, skip_special_tokens=True).lstrip("!").strip() for t in tokens.tolist()]
        return [Result(text=t, trace=self._trace([("understand", nfe, clock.seconds / len(requests))], steps))
                for t in texts]

    def _decode_text(self, rows: list[Row], gen_len: int, block: int, temperature: float,
                     seeds: list[int]) -> tuple[Tensor, int, int]:
        """Prefix-LM text decoding (§6.1): the prompt is encoded once into a cache."""
        batch = self.builder.batch(rows)
        _, cache = self.net(batch.embeds, valid=batch.valid, use_cache=True)

        def logits_fn(x: Tensor) -> Tensor:
            hidden, _ = self.net(self.net.embed_text(x), cache=cache)
            return self.net.text_logits(hidden).float()

        tokens, trace = sample_text(logits_fn, len(rows), gen_len, block_length=block, temperature=temperature,
                                    mask_id=self.ids.mask, generators=self.generators(seeds), device=self.device)
        return tokens, trace.nfe + 1, trace.steps

    def _tiles(self, image: Image.Image):
        return anyres_tiles(image, self.pinpoints, self.tile)

    # --- grounding -------------------------------------------------------------------------
    @torch.no_grad()
    def ground(self, requests: list[Request]) -> list[Result]:
        from lavida_bench.model.sampling.grounding import decode_positions

        steps = requests[0].options.steps or 1
        if any((r.options.steps or 1) != steps for r in requests):
            raise ValueError("a batch must share the grounding step count")
        with StageClock(self.device) as clock:
            feats = self.builder.image_features([self._tiles(r.images[0]) for r in requests])
            rows = [self.builder.row(prompts.grounding_prompt(r.prompt), [f]) for r, f in zip(requests, feats)]
            batch = self.builder.batch(rows)
            slots = batch.mask_of(self.ids.mask)
            if not bool((slots.sum(1) == 4).all()):
                raise RuntimeError("grounding prompt must hold exactly four mask slots per row")

            def logits_fn(x: Tensor) -> Tensor:
                embeds = batch.embeds.clone()
                embeds[slots] = self.net.embed_text(x).reshape(-1, embeds.shape[-1])
                hidden, _ = self.net(embeds, valid=batch.valid)
                return self.net.text_logits(hidden[slots].view(len(rows), 4, -1)).float()

            tokens, trace = decode_positions(logits_fn, len(rows), 4, steps=steps, mask_id=self.ids.mask,
                                             device=self.device)
        results = []
        for r, toks in zip(requests, tokens.tolist()):
            bins = [self.ids.loc_value(t) for t in toks]
            w, h = r.images[0].size
            extra = {"loc_bins": bins, "raw_tokens": toks}
            boxes = [dequantize_box(bins, w, h, self.grounding_frame)] if None not in bins else []
            if not boxes:
                extra["parse_failure"] = True
            trace_ = self._trace([("ground", trace.nfe, clock.seconds / len(requests))], trace.steps)
            trace_.extra.update(extra)
            results.append(Result(boxes=boxes, trace=trace_))
        return results

    # --- generation and editing ----------------------------------------------------------------
    @torch.no_grad()
    def generate(self, requests: list[Request]) -> list[Result]:
        return self._create(requests, edit=False)

    @torch.no_grad()
    def edit(self, requests: list[Request]) -> list[Result]:
        return self._create(requests, edit=True)

    @torch.no_grad()
    def interleave(self, requests: list[Request], max_new_tokens: int = 64) -> list[Result]:
        """Modality-aware decoding of an interleaved answer: the text answer is decoded first; where
        it emits the expansion token (`<|reserved_token_7|>`, the release's collapsed image slot,
        §6.5), that one token becomes a block of masked image tokens routed to the generation
        branch and is drawn with the text before it in the assistant turn, so the model's own
        text decides whether and where an image goes. The release itself never expands at
        inference (§6.5); this follows the paper's description with the code's token."""
        for r in requests:
            self._check_resolution(r, edit=False)
        with StageClock(self.device) as clock:
            rows = [self.builder.row(chat_prompt(r.prompt), []) for r in requests]
            tokens, nfe, steps = self._decode_text(rows, max_new_tokens, 16, 0.0,
                                                   [stage_seed(r.seed, "understand") for r in requests])
        results: list[Result] = []
        to_draw: list[tuple[int, DrawJob]] = []
        for i, (r, toks) in enumerate(zip(requests, tokens.tolist())):
            cut = toks.index(self.ids.fake_image) if self.ids.fake_image in toks else None
            before = toks if cut is None else toks[:cut]
            text = clean_decoded(self.tokenizer.decode(before, skip_special_tokens=False))
            trace = self._trace([("text", nfe, clock.seconds / len(requests))], steps)
            trace.extra.update({"expanded": cut is not None, "expansion_at": cut})
            results.append(Result(text=text, trace=trace))
            if cut is not None:
                to_draw.append((i, DrawJob(r, plan=self._safe_plan(text))))
        if to_draw:
            images, d_nfe, secs, d_steps = self._draw([job for _, job in to_draw], False, 1)
            for (i, _), image in zip(to_draw, images):
                res = results[i]
                res.image = image
                res.trace.stages.append(Stage("draw1", d_nfe, secs))
                res.trace.nfe += d_nfe
                res.trace.steps += d_steps
                res.trace.latency_s += secs
        return results

    def _resolution(self, r: Request) -> int:
        return r.options.resolution or self.resolution

    def _create(self, requests: list[Request], edit: bool) -> list[Result]:
        """Plan (optional) -> draw -> judge -> redraw with feedback, up to reflect_rounds draws."""
        for r in requests:
            self._check_resolution(r, edit)
        stages: dict[str, list[tuple[str, int, float]]] = {r.id: [] for r in requests}
        jobs = {r.id: DrawJob(r, source=center_crop(r.images[0], self._resolution(r)) if edit else None)
                for r in requests}
        traces = {r.id: Trace() for r in requests}
        planned = [r for r in requests if r.options.plan]
        if planned:
            for r, plan, nfe, secs in self._plan(planned, [jobs[r.id] for r in planned], edit):
                jobs[r.id].plan = plan
                traces[r.id].plan = plan
                res = self._resolution(r)
                traces[r.id].plan_boxes = [dequantize_box(b, res, res, "per_axis") for b in parse_boxes(plan)]
                stages[r.id].append(("plan", nfe, secs))
        final: dict[str, Image.Image] = {}
        attempts: dict[str, list[Image.Image]] = {r.id: [] for r in requests}
        active = list(requests)
        round_ = 0
        while active:
            round_ += 1
            images, nfe, secs, steps = self._draw([jobs[r.id] for r in active], edit, round_)
            for r, im in zip(active, images):
                attempts[r.id].append(im)
                stages[r.id].append((f"draw{round_}", nfe, secs))
                traces[r.id].steps += steps
            judged = [r for r in active if r.options.reflect_rounds > 1]
            verdicts = dict(zip([r.id for r in judged], self._judge(judged, [attempts[r.id][-1] for r in judged],
                                                                    round_, stages)))
            still = []
            for r in active:
                verdict = verdicts.get(r.id)
                if verdict is not None:
                    passed = prompts.PASS_PHRASE in verdict
                    traces[r.id].rounds.append({"round": round_, "verdict": verdict, "passed": passed})
                    if not passed and round_ < r.options.reflect_rounds:
                        jobs[r.id].feedback.append((attempts[r.id][-1], verdict))
                        still.append(r)
                        continue
                final[r.id] = attempts[r.id][-1]
            active = still
        results = []
        for r in requests:
            trace = traces[r.id]
            trace.stages = [Stage(n, nfe, s) for n, nfe, s in stages[r.id]]
            trace.nfe = sum(s.nfe for s in trace.stages)
            trace.latency_s = sum(s.seconds for s in trace.stages)
            trace.peak_memory_bytes = self._peak()
            trace.extra["returned_attempt"] = len(attempts[r.id])
            results.append(Result(image=final[r.id], attempts=attempts[r.id][:-1], trace=trace))
        return results

    def _check_resolution(self, r: Request, edit: bool) -> None:
        """Refuse an unusable resolution before any model time is spent, naming it."""
        res = self._resolution(r)
        scale = self.ck.vq.scale
        policy = r.options.policy or (prompts.EDIT_SETTINGS if edit else self.settings).policy
        side = res // scale
        problem = None
        if res % scale or side < 2:
            problem = f"must be a multiple of the VQ downsampling {scale}"
        elif self.ck.config.downsample and side % 2:
            problem = f"gives a {side}x{side} code grid; the 2x2 downsample needs an even side (use a multiple of {2 * scale})"
        elif policy == "stratified" and side & (side - 1):
            problem = f"gives a {side}x{side} code grid; the stratified order needs a power-of-two side (or use policy=mmada)"
        if problem:
            raise ValueError(f"request {r.id}: resolution {res} {problem}")

    def _plan(self, requests: list[Request], jobs: list[DrawJob], edit: bool):
        """Layout before drawing (§6.6): 64 tokens, block 16; T2I at temperature 0.5, edit at 0."""
        gen_len, block, temperature = prompts.PLAN_EDIT if edit else prompts.PLAN_T2I
        with StageClock(self.device) as clock:
            rows = []
            for r, job in zip(requests, jobs):
                if edit:
                    feats = self.builder.image_features([self._tiles(job.source)])
                    rows.append(self.builder.row(chat_prompt(prompts.plan_edit_user(r.prompt)), feats))
                else:
                    micro = prompts.micro_conditions(self._resolution(r), self.settings)
                    rows.append(self.builder.row(chat_prompt(prompts.plan_t2i_user(r.prompt, micro)), []))
            tokens, nfe, _ = self._decode_text(rows, gen_len, block, temperature,
                                               [stage_seed(r.seed, "plan") for r in requests])
        plans = [self._safe_plan(clean_decoded(self.tokenizer.decode(t, skip_special_tokens=False)))
                 for t in tokens.tolist()]
        return [(r, p, nfe, clock.seconds / len(requests)) for r, p in zip(requests, plans)]

    @staticmethod
    def _safe_plan(plan: str) -> str:
        """A decoded image placeholder inside a plan would change the number of image slots when the
        plan is fed back (the release would fail its slot-count assertion); drop such tokens."""
        for token in ("<|reserved_token_5|>", "<|reserved_token_6|>", "<image>"):
            plan = plan.replace(token, "")
        return plan

    def _judge(self, requests: list[Request], images: list[Image.Image], round_: int,
               stages: dict[str, list]) -> list[str]:
        """Self-reflection verdicts from the understanding branch (§6.6), 32 tokens, block 16."""
        if not requests:
            return []
        gen_len, block, temperature = prompts.JUDGE
        with StageClock(self.device) as clock:
            feats = self.builder.image_features(
                [self._tiles(center_crop(im, self._resolution(r))) for r, im in zip(requests, images)])
            rows = [self.builder.row(chat_prompt(prompts.judge_user(r.caption or r.prompt)), [f])
                    for r, f in zip(requests, feats)]
            tokens, nfe, _ = self._decode_text(rows, gen_len, block, temperature,
                                               [stage_seed(r.seed, "judge", round_) for r in requests])
        for r in requests:
            stages[r.id].append((f"judge{round_}", nfe, clock.seconds / len(requests)))
        return [clean_decoded(self.tokenizer.decode(t, skip_special_tokens=True)).strip() for t in tokens.tolist()]

    def _feedback_images(self, job: DrawJob, round_: int) -> list[tuple[Image.Image, str]]:
        """At most N_FEEDBACK past failures; with more, a seeded sample with distinct texts (§6.6)."""
        if len(job.feedback) <= prompts.N_FEEDBACK:
            return job.feedback
        distinct = list({text: (im, text) for im, text in job.feedback}.values())
        rng = random.Random(stage_seed(job.request.seed, "feedback", round_))
        return rng.sample(distinct, min(prompts.N_FEEDBACK, len(distinct)))

    def _draw(self, jobs: list[DrawJob], edit: bool, round_: int) -> tuple[list[Image.Image], int, float, int]:
        """One image per job; every guidance row of the batch goes through one forward pass per step."""
        res = {self._resolution(j.request) for j in jobs}
        if len(res) != 1:
            raise ValueError(f"a batch must share one resolution, got {sorted(res)}")
        resolution = res.pop()
        side = self.ck.vq.side(resolution)
        n_pos = self.net.image_grid(side) ** 2
        settings = prompts.EDIT_SETTINGS if edit else self.settings
        opts = jobs[0].request.options
        with StageClock(self.device) as clock:
            rows, source_codes = [], []
            for job in jobs:
                feedback = self._feedback_images(job, round_)
                tiles = [single_tile(im, self.tile) for im, _ in feedback]
                gen_tokens = "<|reserved_token_5|>" * n_pos
                if edit:
                    user = prompts.edit_user(job.request.prompt, "<|reserved_token_6|>" * n_pos)
                    tiles = [self._tiles(job.source)] + tiles
                    source_codes.append(job.source)
                else:
                    user = prompts.t2i_user(job.request.prompt, prompts.micro_conditions(resolution, settings))
                if feedback:
                    user += prompts.feedback_suffix([text for _, text in feedback])
                rows.append(self.builder.row(chat_prompt(user, job.plan + gen_tokens),
                                             self.builder.image_features(tiles)))
            batch = self.builder.batch(rows)
            src_embeds = None
            if edit:
                codes = self.ck.vq.encode(source_codes, resolution)
                src_embeds = self.net.embed_codes(codes.to(self.device), side).to(batch.embeds.dtype)
            planned = torch.tensor([bool(j.plan) for j in jobs], device=self.device)
            logits_fn = self._guided_logits(batch, planned, side, src_embeds, settings, opts.cfg)
            codes, trace = sample_image(
                logits_fn, len(jobs), side * side, steps=opts.steps or settings.steps, schedule=settings.schedule,
                shift=settings.shift, policy=opts.policy or settings.policy,
                temperature=settings.temperature if opts.temperature is None else opts.temperature,
                alg_temp=settings.alg_temp, dynamic_temperature=settings.dynamic_temperature,
                min_temperature=settings.min_temperature, schedule_temp=settings.schedule_temp,
                mask_id=self.ck.config.vq_mask_id,
                generators=self.generators([stage_seed(j.request.seed, "draw", round_) for j in jobs]),
                device=self.device)
            # one image at a time: the decoder's float output (and so the uint8 bytes) must not
            # depend on batch size
            images = [self.ck.vq.decode(c[None], side)[0] for c in codes]
        return images, trace.nfe, clock.seconds / len(jobs), trace.steps

    def _guided_logits(self, batch: Batch, planned: Tensor, side: int, src_embeds: Tensor | None, settings: prompts.ImageSettings,
                       cfg_override: float | None) -> Callable[[Tensor], Tensor]:
        """Stack [uncond, (image-only), cond] rows (§6.2, §6.3) and return the guided logits function."""
        b = batch.ids.shape[0]
        gen = batch.mask_of(self.ids.gen_image)
        src = batch.mask_of(self.ids.source_image)
        mask_embed = self.net.embed_text(torch.tensor([self.ids.mask], device=self.device))[0]
        cond = batch.embeds.clone()
        if src_embeds is not None:
            cond[src] = src_embeds.reshape(-1, cond.shape[-1])
        uncond = cond.clone()
        uncond[self._prompt_rows(batch, gen, planned)] = mask_embed
        variants, routes = [uncond], [gen]  # uncond: source rows are mask embeddings, routed to und
        if src_embeds is not None:  # edit_mode 0: only the source VQ rows kept, routed to gen
            image_only = torch.where(src[..., None], cond, mask_embed.expand_as(cond))
            variants.append(image_only)
            routes.append(gen | src)
        variants.append(cond)
        routes.append(gen | src)
        stacked = torch.cat(variants)
        route = torch.cat(routes)
        gen_all = gen.repeat(len(variants), 1)
        valid = batch.valid.repeat(len(variants), 1)
        scale = settings.cfg if cfg_override is None else cfg_override
        k = len(variants)

        def logits_fn(codes: Tensor) -> Tensor:
            embeds = stacked.clone()
            code_embeds = self.net.embed_codes(codes, side).to(embeds.dtype)  # [b, n_pos, d]
            embeds[gen_all] = code_embeds.repeat(k, 1, 1).reshape(-1, embeds.shape[-1])
            hidden, _ = self.net(embeds, gen_mask=route, valid=valid, image_only=self.image_only)
            logits = self.net.code_logits(hidden[gen_all].view(k * b, -1, hidden.shape[-1]), side).float()
            parts = logits.split(b)
            if k == 3:
                return edit_guidance(parts[2], parts[1], parts[0], scale, settings.image_cfg, settings.edit_mode)
            return guide_cfg(parts[1], parts[0], scale)

        return logits_fn

    def _prompt_rows(self, batch: Batch, gen: Tensor, planned: Tensor) -> Tensor:
        """Rows the unconditional input masks: up to the end of the user turn, or with a plan,
        everything before the first image placeholder (predict_t2i_edit.py:209-219)."""
        eot = batch.mask_of(self.ids.eot)
        pos = torch.arange(batch.ids.shape[1], device=self.device).expand_as(batch.ids)
        # second <|eot_id|> ends the user turn
        second_eot = torch.where(eot.cumsum(1) == 2, pos, batch.ids.shape[1]).min(1).values
        first_gen = torch.where(gen, pos, batch.ids.shape[1]).min(1).values
        cutoff = torch.where(planned, torch.maximum(second_eot, first_gen - 1), second_eot)
        return (pos <= cutoff[:, None]) & batch.valid & ~gen

    # --- traces ------------------------------------------------------------------------------
    def _peak(self) -> int:
        return int(torch.cuda.max_memory_allocated(self.device)) if self.device.type == "cuda" else 0

    def _trace(self, stages: list[tuple[str, int, float]], steps: int) -> Trace:
        st = [Stage(n, nfe, s) for n, nfe, s in stages]
        return Trace(nfe=sum(s.nfe for s in st), steps=steps, latency_s=sum(s.seconds for s in st),
                     peak_memory_bytes=self._peak(), stages=st)

