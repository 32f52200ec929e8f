"""The training task mix: world examples as the release's prompts, before any tensor exists.

Each `Example` is one training sequence as the pipeline would build it at inference
(`model/pipeline.py`): the same chat template, user strings and placeholders, so that what the
micro model learns is exactly what the harness later asks. Text tasks carry an `answer` (the
assistant turn, LLaDA-style followed by `<|eot_id|>` and EOS padding); image tasks carry a
`target` image whose VQ codes are the answer. Training strings follow LaVida-O's training data
where the code shows it (LaVida-O `llava/train/data/und.py:60-81`,
`llava/train/data/text_image.py:113-128`): RefCOCO answers are the LOC string, plans are
`Sure I should place the objects in the following manner {grounding_text}`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from lavida_bench.model import prompts
from lavida_bench.model.tokens import chat_prompt
from lavida_bench.tasks import chartqa, mmmu
from lavida_bench.world.edits import random_edit
from lavida_bench.world.fixtures import MMMU_CHOICES, MMMU_QUESTION, describe, mmmu_answer
from lavida_bench.world.language import (GENEVAL_TAGS, geneval_caption, grounding_answer, layout_text,
                                         questions, refer)
from lavida_bench.world.scene import sample_scene
from lavida_bench.world.verdicts import judge_pair

GEN = "<|reserved_token_5|>"  # one per generated-image LLM position
SOURCE = "<|reserved_token_6|>"  # one per source-image VQ position (editing)
# task -> share of training examples; image generation dominates as in the release's stage 3
MIX = {"t2i": 0.4, "edit": 0.12, "ground": 0.12, "understand": 0.14, "judge": 0.1, "plan": 0.12}
# The tuning stage's default mix (`run.py`, `RunSettings.tune_mix`): the same tasks, plus the
# questions and captions phrased as the benchmark adapters phrase them (`task_qa`, `dense_t2i`).
# The first stage's mix phrases them only in the world's own words, and a micro model answers
# nothing in a phrasing it never saw (docs/benchmarks.md, "The benchmarks' phrasings").
TUNE_MIX = {"t2i": 0.3, "dense_t2i": 0.1, "edit": 0.1, "ground": 0.1, "understand": 0.1, "task_qa": 0.1,
            "judge": 0.1, "plan": 0.1}
# Every task a mix may name: the tuning stage's, and those that teach one skill alone before the
# full mix: `color_qa` (the world's colour questions: reading an object's colour; docs/benchmarks.md,
# "Ground first, then colour alone") and `planned_t2i` (text-to-image with the layout plan always
# given: drawing each object in its planned box; "Drawing follows the plan once trained on it alone"),
# `plain_t2i` (text-to-image with no plan: choosing a layout itself, as plain GenEval asks), and the
# two halves of a planned edit (LaVida-O `predict_t2i_edit.py:740-775` `create_plan_edit`):
# `plan_edit` (where the edit goes, from the source image and the instruction) and `planned_edit`
# (the edit drawn after that plan).
TASKS = (*TUNE_MIX, "color_qa", "planned_t2i", "plain_t2i", "plan_edit", "planned_edit")
# mix entries that make another task's examples (their batch size and loss follow that task)
TRAINED_AS = {"task_qa": "understand", "dense_t2i": "t2i", "color_qa": "understand", "planned_t2i": "t2i",
              "plain_t2i": "t2i", "plan_edit": "plan", "planned_edit": "edit"}
ANSWER_TOKENS = {"understand": 16, "judge": 32, "plan": 64}  # = the inference decode lengths
UNDERSTAND_TOKENS = ANSWER_TOKENS["understand"]
MICRO_SETTINGS = ("demo_1024", "geneval_script")


def mix_text(mix: dict[str, float]) -> str:
    """`mix` as the `mix` run setting writes it: `task=share,...`."""
    return ",".join(f"{task}={share:g}" for task, share in mix.items())


def parse_mix(text: str) -> dict[str, float]:
    """A network stage's mix from its `task=share,...` text (the `mix` and `phases` run settings):
    tasks of `TASKS`, each once, shares > 0 that sum to 1, in the order written (the order is part
    of the example stream: `trainer.sample_task` draws an index)."""
    mix: dict[str, float] = {}
    for entry in text.split(","):
        task, sep, share = (part.strip() for part in entry.partition("="))
        try:
            value = float(share)
        except ValueError:
            value = float("nan")
        if not sep or task not in TASKS or task in mix or not value > 0:
            raise ValueError(f"mix entry {entry!r}: expected task=share, a task of {', '.join(TASKS)} (each once) "
                             f"and a share > 0")
        mix[task] = value
    if abs(sum(mix.values()) - 1) > 1e-6:
        raise ValueError(f"mix {text!r}: the shares sum to {sum(mix.values()):g}, expected 1")
    return mix


@dataclass
class Example:
    """One sequence: `prompt` (full text with `<image>` slots), `images` for those slots, and
    either a text `answer` or a `target` image (with an edit `source`)."""

    task: str
    prompt: str
    images: list[Image.Image] = field(default_factory=list)
    answer: str = ""
    target: Image.Image | None = None
    source: Image.Image | None = None
    plan: bool = False


def micro(rng: np.random.Generator, side: int) -> str:
    return prompts.micro_conditions(side, prompts.IMAGE_SETTINGS[str(rng.choice(MICRO_SETTINGS))])


def t2i_example(rng: np.random.Generator, side: int, n_pos: int, planned: bool | None = None) -> Example:
    """Caption -> image, with the layout plan in the assistant turn (how planned generation is
    asked at inference) when `planned`; None: half of them, drawn at random."""
    caption = geneval_caption(rng, str(rng.choice(GENEVAL_TAGS)), side)
    if planned is None:
        planned = bool(rng.random() < 0.5)
    plan = layout_text(caption.scene) if planned else ""
    user = prompts.t2i_user(caption.text, micro(rng, side))
    return Example("t2i", chat_prompt(user, plan + GEN * n_pos), target=caption.scene.image(), plan=planned)


def planned_t2i_example(rng: np.random.Generator, side: int, n_pos: int) -> Example:
    """The `planned_t2i` mix task: `t2i` with the layout plan always given."""
    return t2i_example(rng, side, n_pos, planned=True)


def plain_t2i_example(rng: np.random.Generator, side: int, n_pos: int) -> Example:
    """The `plain_t2i` mix task: `t2i` with no plan (the model lays the scene out itself)."""
    return t2i_example(rng, side, n_pos, planned=False)


def edit_example(rng: np.random.Generator, side: int, n_pos: int, planned: bool = False) -> Example:
    """Source + instruction -> edited image; with the edit's plan in the assistant turn when `planned`."""
    edit = random_edit(rng, side)
    source = edit.source.image()
    user = prompts.edit_user(edit.instruction, SOURCE * n_pos)
    assistant = (edit.plan() if planned else "") + GEN * n_pos
    return Example("edit", chat_prompt(user, assistant), [source], target=edit.target.image(), source=source,
                   plan=planned)


def planned_edit_example(rng: np.random.Generator, side: int, n_pos: int) -> Example:
    """The `planned_edit` mix task: `edit` drawn after its plan."""
    return edit_example(rng, side, n_pos, planned=True)


def plan_edit_example(rng: np.random.Generator, side: int) -> Example:
    """The `plan_edit` mix task: the edit's plan from the source image and the instruction."""
    edit = random_edit(rng, side)
    return Example("plan", chat_prompt(prompts.plan_edit_user(edit.instruction)), [edit.source.image()],
                   answer=edit.plan())


def ground_example(rng: np.random.Generator, side: int) -> Example:
    """The RefCOCO prompt with its four mask slots; the answer fills them."""
    while True:
        scene = sample_scene(rng, side)
        index = int(rng.integers(len(scene.objects)))
        expression = refer(scene, index)
        if expression:
            answer = grounding_answer(scene, index).removeprefix("<LOC_BEGIN>").removesuffix("<LOC_END>")
            return Example("ground", prompts.grounding_prompt(expression), [scene.image()], answer=answer)


def understand_example(rng: np.random.Generator, side: int) -> Example:
    scene = sample_scene(rng, side)
    qa = questions(scene, rng)
    pick = qa[int(rng.integers(len(qa)))]
    return question_example(pick.question, scene.image(), pick.answer)


def color_question_example(rng: np.random.Generator, side: int) -> Example:
    """A colour question ("What color is the square?") about a scene that has one to ask."""
    while True:
        scene = sample_scene(rng, side)
        asked = [qa for qa in questions(scene, rng) if qa.kind == "color"]
        if asked:
            return question_example(asked[0].question, scene.image(), asked[0].answer)


def question_example(question: str, image: Image.Image, answer: str) -> Example:
    """A question about one image, in the understanding prompt the pipeline builds."""
    return Example("understand", chat_prompt(prompts.understand_user(question, 1)), [image], answer=answer)


def task_question_example(rng: np.random.Generator, side: int) -> Example:
    """A world question in a benchmark adapter's phrasing: ChartQA's (a count or colour question
    with its post-prompt) or MMMU's (the fixture's multiple-choice count, lmms-eval's format)."""
    scene = sample_scene(rng, side)
    if rng.random() < 0.5:
        qa = [q for q in questions(scene, rng) if q.kind in ("count", "color")]
        pick = qa[int(rng.integers(len(qa)))]
        return question_example(chartqa.build_prompt(pick.question), scene.image(), pick.answer)
    question = mmmu.build_prompt(MMMU_QUESTION, list(MMMU_CHOICES), "multiple-choice")
    return question_example(question, scene.image(), mmmu_answer(scene))


def dense_t2i_example(rng: np.random.Generator, side: int, n_pos: int) -> Example:
    """A DPG- and FID-style dense caption (every object with its colour, and the background)."""
    scene = sample_scene(rng, side)
    user = prompts.t2i_user(describe(scene), micro(rng, side))
    return Example("t2i", chat_prompt(user, GEN * n_pos), target=scene.image())


def judge_example(rng: np.random.Generator, side: int) -> Example:
    pair = judge_pair(rng, str(rng.choice(GENEVAL_TAGS)), bool(rng.random() < 0.5), side)
    return Example("judge", chat_prompt(prompts.judge_user(pair.caption.text)), [pair.shown.image()],
                   answer=pair.verdict)


def plan_example(rng: np.random.Generator, side: int) -> Example:
    caption = geneval_caption(rng, str(rng.choice(GENEVAL_TAGS)), side)
    user = prompts.plan_t2i_user(caption.text, micro(rng, side))
    return Example("plan", chat_prompt(user), answer=layout_text(caption.scene))


def example(rng: np.random.Generator, task: str, side: int, n_pos: int) -> Example:
    """One example of mix entry `task` (one of `TASKS`)."""
    image_makers = {"t2i": t2i_example, "planned_t2i": planned_t2i_example, "plain_t2i": plain_t2i_example,
                    "dense_t2i": dense_t2i_example, "edit": edit_example, "planned_edit": planned_edit_example}
    if task in image_makers:
        return image_makers[task](rng, side, n_pos)
    makers = {"ground": ground_example, "understand": understand_example, "task_qa": task_question_example,
              "judge": judge_example, "plan": plan_example, "color_qa": color_question_example,
              "plan_edit": plan_edit_example}
    if task not in makers:
        raise ValueError(f"unknown training task {task!r} (one of {', '.join(TASKS)})")
    return makers[task](rng, side)


def trained_as(task: str) -> str:
    """The task whose examples mix entry `task` makes (its batch size and loss follow it)."""
    return TRAINED_AS.get(task, task)


def corpus(rng: np.random.Generator, side: int, n: int = 400) -> list[str]:
    """Texts of `n` examples per task, for learning the tokenizer's merges."""
    out = []
    for task in MIX:
        for _ in range(n):
            ex = example(rng, task, side, 0)
            out.append(ex.prompt.replace("<image>", " "))
            out.append(ex.answer)
    return out
