"""Planning and self-reflection around drawing (LaVida-O `llava/eval/predict_t2i_edit.py:706-808`,
loop in `eval_img/eval.py:314-414`): plan a layout first
(optional), draw, let the understanding branch judge the image, and redraw with the failures as
feedback until a verdict passes or the request's round cap is reached."""
from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from lavida_bench.model import prompts
from lavida_bench.model.drawer import DrawJob, ImageDrawer
from lavida_bench.model.parts import ModelParts
from lavida_bench.model.sampling.grounding import dequantize_box
from lavida_bench.model.stages import StageClock, stage_seed, trace_of
from lavida_bench.model.text_decoder import TextDecoder
from lavida_bench.model.tokens import SPECIAL_TOKENS, chat_prompt, clean_decoded, parse_boxes
from lavida_bench.model.vision import center_crop
from lavida_bench.api import Request, Result, Stage, Trace

# Decoded image placeholders a plan must not carry back into a drawing prompt (see safe_plan).
PLACEHOLDERS = (SPECIAL_TOKENS["gen_image"], SPECIAL_TOKENS["source_image"], "<image>")


def safe_plan(plan: str) -> str:
    """A decoded image placeholder inside a plan would change the number of image slots when the
    plan is fed back (the release would fail its slot-count assertion); drop such tokens."""
    for token in PLACEHOLDERS:
        plan = plan.replace(token, "")
    return plan


@dataclass
class Creation:
    """One generate/edit request in flight: its drawing job, attempts so far and its trace."""

    request: Request
    job: DrawJob
    trace: Trace = field(default_factory=Trace)
    stages: list[Stage] = field(default_factory=list)
    attempts: list[Image.Image] = field(default_factory=list)
    steps: int = 0

    def result(self, parts: ModelParts) -> Result:
        trace = trace_of(self.stages, self.steps, parts.device, self.trace)
        trace.extra["returned_attempt"] = len(self.attempts)
        return Result(image=self.attempts[-1], attempts=self.attempts[:-1], trace=trace)


class ReflectionLoop:
    """generate / edit: plan (optional) -> draw -> judge -> redraw with feedback."""

    def __init__(self, parts: ModelParts, text: TextDecoder, drawer: ImageDrawer):
        self.parts, self.text, self.drawer = parts, text, drawer

    def run(self, requests: list[Request], edit: bool) -> list[Result]:
        p = self.parts
        for r in requests:
            self.drawer.check_resolution(r, edit)
        creations = [Creation(r, DrawJob(r, source=center_crop(r.images[0], p.resolution_of(r)) if edit else None))
                     for r in requests]
        planned = [c for c in creations if c.request.options.plan]
        if planned:
            self.plan(planned, edit)
        active, round_ = creations, 0
        while active:
            round_ += 1
            drawn = self.drawer.draw([c.job for c in active], edit, round_)
            for c, image in zip(active, drawn.images):
                c.attempts.append(image)
                c.stages.append(Stage(f"draw{round_}", drawn.nfe, drawn.seconds))
                c.steps += drawn.steps
            judged = [c for c in active if c.request.options.reflect_rounds > 1]
            verdicts = dict(zip(map(id, judged), self.judge(judged, round_)))
            active = [c for c in active if self._redraw(c, verdicts.get(id(c)), round_)]
        return [c.result(p) for c in creations]

    @staticmethod
    def _redraw(c: Creation, verdict: str | None, round_: int) -> bool:
        """Record a verdict; True when the request is drawn again with it as feedback."""
        if verdict is None:
            return False
        passed = prompts.PASS_PHRASE in verdict
        c.trace.rounds.append({"round": round_, "verdict": verdict, "passed": passed})
        if passed or round_ >= c.request.options.reflect_rounds:
            return False
        c.job.feedback.append((c.attempts[-1], verdict))
        return True

    def plan(self, creations: list[Creation], edit: bool) -> None:
        """Layout before drawing (predict_t2i_edit.py:706-775): 64 tokens, block 16; T2I at temperature 0.5, edit at 0."""
        p = self.parts
        gen_len, block, temperature = prompts.PLAN_EDIT if edit else prompts.PLAN_T2I
        with StageClock(p.device) as clock:
            rows = []
            for c in creations:
                if edit:
                    feats = p.builder.image_features([p.tiles(c.job.source)])
                    rows.append(p.builder.row(chat_prompt(prompts.plan_edit_user(c.request.prompt)), feats))
                else:
                    micro = prompts.micro_conditions(p.resolution_of(c.request), p.settings)
                    rows.append(p.builder.row(chat_prompt(prompts.plan_t2i_user(c.request.prompt, micro)), []))
            tokens, nfe, _ = self.text.decode(rows, gen_len, block, temperature,
                                              [stage_seed(c.request.seed, "plan") for c in creations])
        for c, t in zip(creations, tokens.tolist()):
            plan = safe_plan(clean_decoded(p.tokenizer.decode(t, skip_special_tokens=False)))
            c.job.plan = c.trace.plan = plan
            res = p.resolution_of(c.request)
            c.trace.plan_boxes = [dequantize_box(b, res, res, "per_axis") for b in parse_boxes(plan)]
            c.stages.append(Stage("plan", nfe, clock.seconds / len(creations)))

    def judge(self, creations: list[Creation], round_: int) -> list[str]:
        """Self-reflection verdicts on each creation's latest attempt, cropped as it was drawn."""
        if not creations:
            return []
        p = self.parts
        with StageClock(p.device) as clock:
            images = [center_crop(c.attempts[-1], p.resolution_of(c.request)) for c in creations]
            verdicts, nfe = self.verdicts([c.request.caption or c.request.prompt for c in creations], images,
                                          [stage_seed(c.request.seed, "judge", round_) for c in creations])
        for c in creations:
            c.stages.append(Stage(f"judge{round_}", nfe, clock.seconds / len(creations)))
        return verdicts

    def verdicts(self, captions: list[str], images: list[Image.Image], seeds: list[int]) -> tuple[list[str], int]:
        """The judge's verdict on each image against its caption (predict_t2i_edit.py:777-808; 32
        tokens, block 16), and the forward passes it took. Public so that a measure of the judge
        decodes exactly as the loop does."""
        p = self.parts
        gen_len, block, temperature = prompts.JUDGE
        feats = p.builder.image_features([p.tiles(image) for image in images])
        rows = [p.builder.row(chat_prompt(prompts.judge_user(caption)), [f]) for caption, f in zip(captions, feats)]
        tokens, nfe, _ = self.text.decode(rows, gen_len, block, temperature, seeds)
        # as the release decodes a verdict: special tokens kept, three markers removed, no strip
        # (predict_t2i_edit.py:807, eval_img/eval.py:71-76); it is fed back verbatim
        return [clean_decoded(p.tokenizer.decode(t, skip_special_tokens=False)) for t in tokens.tolist()], nfe
