"""Drawing images (LaVida-O `llava/eval/predict_t2i_edit.py:136-704`, editing guidance at :443-488): prompt rows for text-to-image and editing, the
classifier-free-guidance row stack, and the image sampler's denoising loop (`run_steps`).

All guidance rows of a batch go through ONE forward pass per step. A denoising step (network,
guidance and sampler transition) reads no tensor data back to the host, so it can run compiled
(`ModelParts.compile_steps`, `torch.compile(fullgraph=True)`); the random draws of each step are
taken before it from every request's own generator.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import Tensor

from lavida_bench.model import prompts
from lavida_bench.model.network import Route
from lavida_bench.model.parts import ModelParts
from lavida_bench.model.sampling.guidance import cfg as guide_cfg
from lavida_bench.model.sampling.guidance import edit_guidance
from lavida_bench.model.sampling.image import Denoise, Guided, ImageOptions, denoiser, run_steps, start
from lavida_bench.model.sequences import Batch
from lavida_bench.model.stages import StageClock, stage_seed
from lavida_bench.model.tokens import SPECIAL_TOKENS, chat_prompt
from lavida_bench.model.vision import single_tile
from lavida_bench.api import Request


def compile_step(denoise: Denoise) -> Denoise:
    """torch.compile with fullgraph=True: a graph break is an error, never a silent slow path.
    Shapes are static per draw; later draws of the same shapes reuse the compiled graph."""
    return torch.compile(denoise, fullgraph=True, dynamic=False)


@dataclass
class DrawJob:
    """One image to draw: a caption (T2I) or instruction + source (edit), with plan and feedback."""

    request: Request
    plan: str = ""
    feedback: list[tuple[Image.Image, str]] = field(default_factory=list)
    source: Image.Image | None = None  # cropped source image (edit)


@dataclass(frozen=True)
class Drawn:
    """A batch's images and what drawing them cost (seconds: each request's share)."""

    images: list[Image.Image]
    nfe: int
    seconds: float
    steps: int


class ImageDrawer:
    """Draws one image per job; a batch shares one resolution and one set of sampler options."""

    def __init__(self, parts: ModelParts):
        self.parts = parts

    def check_resolution(self, r: Request, edit: bool) -> None:
        """Refuse an unusable resolution before any model time is spent, naming it."""
        p = self.parts
        res, scale = p.resolution_of(r), p.ck.vq.scale
        policy = r.options.policy or (prompts.EDIT_SETTINGS if edit else p.settings).policy
        side = res // scale
        problem = None
        if res % scale or side < 2:
            problem = f"must be a multiple of the VQ downsampling {scale}"
        elif p.ck.config.downsample and side % 2:
            problem = f"gives a {side}x{side} code grid; the 2x2 downsample needs an even side (use a multiple of {2 * scale})"
        elif policy == "stratified" and side & (side - 1):
            problem = f"gives a {side}x{side} code grid; the stratified order needs a power-of-two side (or use policy=mmada)"
        if problem:
            raise ValueError(f"request {r.id}: resolution {res} {problem}")

    def feedback_images(self, job: DrawJob, round_: int) -> list[tuple[Image.Image, str]]:
        """At most N_FEEDBACK past failures; with more, a seeded sample with distinct texts (eval_img/eval.py:314-414)."""
        if len(job.feedback) <= prompts.N_FEEDBACK:
            return job.feedback
        distinct = list({text: (im, text) for im, text in job.feedback}.values())
        rng = random.Random(stage_seed(job.request.seed, "feedback", round_))
        return rng.sample(distinct, min(prompts.N_FEEDBACK, len(distinct)))

    def draw(self, jobs: list[DrawJob], edit: bool, round_: int) -> Drawn:
        """One image per job; every guidance row of the batch goes through one pass per step."""
        p = self.parts
        resolutions = {p.resolution_of(j.request) for j in jobs}
        if len(resolutions) != 1:
            raise ValueError(f"a batch must share one resolution, got {sorted(resolutions)}")
        resolution = resolutions.pop()
        side = p.ck.vq.side(resolution)
        settings = prompts.EDIT_SETTINGS if edit else p.settings
        opts = jobs[0].request.options
        with StageClock(p.device) as clock:
            batch = p.builder.batch([self._row(j, edit, round_, resolution, settings) for j in jobs])
            src_embeds = self._source_embeds([j.source for j in jobs], resolution, side) if edit else None
            planned = torch.tensor([bool(j.plan) for j in jobs], device=p.device)
            logits_fn = self.guided_logits(batch, planned, side, src_embeds, settings, opts.cfg, opts.image_cfg)
            options = settings.sampler(p.ck.config.vq_mask_id, opts.steps, opts.policy, opts.temperature)
            seeds = [stage_seed(j.request.seed, "draw", round_) for j in jobs]
            codes, steps = self.sample(logits_fn, options, p.generators(seeds), side * side)
            # one image at a time: the decoder's float output (and so the uint8 bytes) must not
            # depend on batch size
            images = [p.ck.vq.decode(c[None], side)[0] for c in codes]
        return Drawn(images, steps, clock.seconds / len(jobs), steps)

    def sample(self, logits_fn: Guided, options: ImageOptions,
               generators: list[torch.Generator], n_codes: int) -> tuple[Tensor, int]:
        """The denoising loop: draws per step from each generator, then one (compiled) step."""
        codes = torch.full((len(generators), n_codes), options.mask_id, dtype=torch.long, device=self.parts.device)
        denoise = denoiser(logits_fn, options, "image drawer")
        if self.parts.compile_steps:
            denoise = compile_step(denoise)
        state = run_steps(start(options, codes), options, generators, denoise)
        return state.codes, state.n_steps

    def _row(self, job: DrawJob, edit: bool, round_: int, resolution: int, settings: prompts.ImageSettings):
        """The drawing prompt (predict_t2i_edit.py:209-272): placeholders for the image, the source (edit), the plan,
        and one `<image>` per past failure with its feedback (reflection, eval_img/eval.py:314-414)."""
        p = self.parts
        n_pos = p.net.image_grid(p.ck.vq.side(resolution)) ** 2
        feedback = self.feedback_images(job, round_)
        tiles = [single_tile(im, p.tile) for im, _ in feedback]
        if edit:
            user = prompts.edit_user(job.request.prompt, SPECIAL_TOKENS["source_image"] * n_pos)
            tiles = [p.tiles(job.source)] + tiles
        else:
            user = prompts.t2i_user(job.request.prompt, prompts.micro_conditions(resolution, settings))
        if feedback:
            user += prompts.feedback_suffix([text for _, text in feedback])
        assistant = job.plan + SPECIAL_TOKENS["gen_image"] * n_pos
        return p.builder.row(chat_prompt(user, assistant), p.builder.image_features(tiles))

    def _source_embeds(self, sources: list[Image.Image | None], resolution: int, side: int) -> Tensor:
        """Edit sources as VQ codes, embedded for the generation branch (predict_t2i_edit.py:234-236)."""
        p = self.parts
        codes = p.ck.vq.encode(sources, resolution)
        return p.net.embed_codes(codes.to(p.device), side)

    def guided_logits(self, batch: Batch, planned: Tensor, side: int, src_embeds: Tensor | None,
                      settings: prompts.ImageSettings, cfg_override: float | None,
                      image_cfg_override: float | None = None) -> Guided:
        """Stack [uncond, (image-only), cond] rows (predict_t2i_edit.py:421-611, 443-488) and return the guided logits
        (`Guided`: the branches of one forward pass and the formula combining them); everything
        that depends only on the prompt is built here, once per draw."""
        p = self.parts
        b, d = batch.ids.shape[0], batch.embeds.shape[-1]
        gen, src = batch.mask_of(p.ids.gen_image), batch.mask_of(p.ids.source_image)
        mask_embed = p.net.embed_text(torch.tensor([p.ids.mask], device=p.device))[0]
        cond = batch.embeds.clone()
        if src_embeds is not None:
            cond[src] = src_embeds.to(cond.dtype).reshape(-1, d)
        uncond = cond.clone()
        uncond[self.prompt_rows(batch, gen, planned)] = mask_embed
        variants, routes = [uncond], [gen]  # uncond: source rows are mask embeddings, routed to und
        if src_embeds is not None:  # edit_mode 0: only the source VQ rows kept, routed to gen
            variants.append(torch.where(src[..., None], cond, mask_embed.expand_as(cond)))
            routes.append(gen | src)
        variants.append(cond)
        routes.append(gen | src)
        k = len(variants)
        stacked, route = torch.cat(variants), Route.of(torch.cat(routes))
        code_rows = gen.repeat(k, 1).reshape(-1).nonzero().squeeze(-1)  # built once: no per-step gathers
        valid = batch.valid.repeat(k, 1) if batch.padded else None
        scale = settings.cfg if cfg_override is None else cfg_override
        image_scale = settings.image_cfg if image_cfg_override is None else image_cfg_override
        image_only, net = p.image_only, p.net

        def branches(codes: Tensor, at: Tensor | None) -> Tensor:
            code_embeds = net.embed_codes(codes, side).to(stacked.dtype).repeat(k, 1, 1).reshape(-1, d)
            embeds = stacked.reshape(-1, d).index_copy(0, code_rows, code_embeds).view_as(stacked)
            hidden, _ = net(embeds, gen_mask=route, valid=valid, image_only=image_only)
            picked = hidden.reshape(-1, d).index_select(0, code_rows).view(k * b, -1, d)
            places = None if at is None else at.repeat(k, 1)
            return net.code_logits(picked, side, places).float().unflatten(0, (k, b))

        def combine(parts: Tensor) -> Tensor:
            if k == 3:
                return edit_guidance(parts[2], parts[1], parts[0], scale, image_scale, settings.edit_mode)
            return guide_cfg(parts[1], parts[0], scale)

        return Guided(branches, combine)

    def prompt_rows(self, batch: Batch, gen: Tensor, planned: Tensor) -> Tensor:
        """Rows the unconditional input masks: up to the end of the user turn, or with a plan,
        everything before the first image placeholder (predict_t2i_edit.py:209-219)."""
        eot = batch.mask_of(self.parts.ids.eot)
        length = batch.ids.shape[1]
        pos = torch.arange(length, device=batch.ids.device).expand_as(batch.ids)
        second_eot = torch.where(eot.cumsum(1) == 2, pos, length).min(1).values  # ends the user turn
        first_gen = torch.where(gen, pos, length).min(1).values
        cutoff = torch.where(planned, torch.maximum(second_eot, first_gen - 1), second_eot)
        return (pos <= cutoff[:, None]) & batch.valid & ~gen
