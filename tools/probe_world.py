"""Probe how fast the micro network learns one kind of world question (a training diagnostic).

    python tools/probe_world.py --question color --steps 800 --heads 8

Trains a fresh micro network (lavida_bench/world/micro.py) on one question kind only, with the
world trainer's masked-diffusion loss, and every `--every` steps prints the training loss and the
held-out accuracy of the first answer token and of the whole answer (all answer slots masked, one
forward pass). It answers "can the network learn this from images at all, and after how many
steps?" in minutes, where a full `tools/train_world.py` run takes an hour. Question kinds:

- `color`, `count`, `choice`, `exists`: the world's own questions (lavida_bench/world/language.py);
- `background`: "What is the background?" (every image position carries the answer);
- `text-binding`: the colour question with the scene described in words and no usable image
  ("There is a red circle, a blue square. What color is the square?"): the same binding, no vision;
- `copy`: "Say the word red." - the answer is a word of the prompt (no binding, no vision);
- `ground`: the RefCOCO prompt on a referring expression ("the red circle"); the four LOC
  tokens all right in one pass is one-step grounding's exact box;
- `memorize`: eight fixed colour questions, trained and tested on the same eight (the image path
  carries information at all).

`--pretrain-vision N` first trains the SigLIP tower, resampler and projector for N steps to name the
object in each 16 px cell (`lavida_bench/world/vision_pretrain.py`, the training run's vision
stage); `--vision-target words` aims it at the words' embeddings instead of class names, `places`
at those plus a code of the cell's place (the `vision_target` setting of a training run). Exit
codes: 0 probed, 2 bad arguments.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np

QUESTIONS = ("color", "count", "choice", "exists", "background", "text-binding", "copy", "memorize", "ground")


def parse(argv: list[str]) -> argparse.Namespace:
    from lavida_bench.world.run import RunSettings
    from lavida_bench.world.vision_pretrain import TARGETS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--question", choices=QUESTIONS, default="color")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--every", type=int, default=100, help="steps between held-out measurements")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--heads", type=int, default=None, help="attention heads (default: the micro config's)")
    p.add_argument("--layers", type=int, default=None, help="transformer blocks (default: the micro config's)")
    p.add_argument("--pretrain-vision", type=int, default=0, metavar="N", help="vision pretraining steps")
    p.add_argument("--vision-target", choices=TARGETS, default=RunSettings.vision_target,
                   help="what vision pretraining aims the features at (lavida_bench/world/vision_pretrain.py)")
    p.add_argument("--vision-lr-scale", type=float, default=RunSettings.vision_lr_scale,
                   help="the vision side's learning rate as a share of --lr (0: frozen after pretraining)")
    p.add_argument("--padding-from", type=int, default=RunSettings.padding_from,
                   help="step from which answers' EOS padding is a training target")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def probe_example(rng: np.random.Generator, kind: str):
    """One Example of `kind`: a question (memorize draws colour questions) or a grounding prompt."""
    from lavida_bench.world.language import questions
    from lavida_bench.world.micro import WORLD_SIDE
    from lavida_bench.world.mix import ground_example
    from lavida_bench.world.mix import question_example as ask
    from lavida_bench.world.scene import sample_scene

    if kind == "ground":
        return ground_example(rng, WORLD_SIDE)
    wanted = "color" if kind in ("memorize", "text-binding") else kind
    while True:
        scene = sample_scene(rng, WORLD_SIDE)
        if kind == "background":
            return ask("What is the background?", scene.image(), scene.background)
        if kind == "copy":
            color = scene.objects[0].color
            return ask(f"Say the word {color}.", scene.with_objects([]).image(), color)
        found = [qa for qa in questions(scene, rng) if qa.kind == wanted]
        if not found:
            continue
        qa = found[0]
        if kind == "text-binding":
            described = ", ".join(f"a {o.color} {o.kind}" for o in scene.objects)
            return ask(f"There is {described}. {qa.question}", scene.with_objects([]).image(), qa.answer)
        return ask(qa.question, scene.image(), qa.answer)


def one_pass_accuracy(trainer, examples) -> tuple[float, float]:
    """With every answer slot masked, one forward pass: the share of examples whose first answer
    token is the argmax, and the share whose every answer token but the EOS padding is."""
    import torch

    from lavida_bench.model.sequences import Row

    rows, answers, slots = [], [], []
    for example, feats in zip(examples, trainer.example_features(examples)):
        row, answer_slots, answer = trainer.answer_row(example, feats)
        ids = list(row.ids)
        for pos in answer_slots.tolist():
            ids[pos] = trainer.ids.mask
        rows.append(Row(ids, row.features))
        answers.append(answer)
        slots.append(answer_slots)
    batch = trainer.builder.batch(rows)
    with torch.no_grad():
        hidden, _ = trainer.net(batch.embeds, valid=batch.valid)
    first, whole = [], []
    for i, (answer, answer_slots) in enumerate(zip(answers, slots)):
        right = trainer.net.text_logits(hidden[i, answer_slots]).argmax(-1) == answer
        first.append(bool(right[0]))
        whole.append(bool(right[~trainer.padding_of(answer)].all()))
    return float(np.mean(first)), float(np.mean(whole))


def build(args: argparse.Namespace):
    import torch

    from lavida_bench.model.tiny import tiny_tokenizer
    from lavida_bench.model.tokens import SpecialIds
    from lavida_bench.model.vq import VQTokenizer, vq_from_config
    from lavida_bench.world.micro import WORLD_SIDE, micro_config, micro_vq_config
    from lavida_bench.world.mix import corpus
    from lavida_bench.world.run import RunSettings, build_network
    from lavida_bench.world.trainer import WorldTrainer

    tokenizer = tiny_tokenizer(corpus(np.random.default_rng(args.seed + 1), WORLD_SIDE))
    cfg = micro_config(len(tokenizer))
    if args.heads:
        cfg = dataclasses.replace(cfg, n_heads=args.heads, n_kv_heads=args.heads)
    if args.layers:
        cfg = dataclasses.replace(cfg, n_layers=args.layers)
    net = build_network(RunSettings(seed=args.seed), tokenizer, cfg)
    torch.manual_seed(args.seed)
    vq = VQTokenizer(vq_from_config(micro_vq_config()))  # text answers only: the VQ is never used
    return WorldTrainer(net, vq, tokenizer, SpecialIds.from_tokenizer(tokenizer))


def probe(args: argparse.Namespace, log=print) -> list[dict[str, float]]:
    """Train and measure; returns one record per measurement."""
    import torch

    from lavida_bench.world.run import RunSettings, Stage, learning_rate, optimizer, padding_targets, training_step

    torch.set_num_threads(args.threads)
    trainer = build(args)
    rng = np.random.default_rng(args.seed + 2)
    if args.pretrain_vision:
        from lavida_bench.world.vision_pretrain import pretrain_vision

        accuracy = pretrain_vision(trainer.net, args.pretrain_vision, args.seed + 5, target=args.vision_target,
                                   tokenizer=trainer.tokenizer)
        log(f"vision pretraining: {args.pretrain_vision} steps, cell accuracy {accuracy:.3f}")
    fixed_rng, held_out_rng = np.random.default_rng(args.seed + 3), np.random.default_rng(args.seed + 4)
    fixed = [probe_example(fixed_rng, args.question) for _ in range(8)]
    held_out = fixed if args.question == "memorize" else [probe_example(held_out_rng, args.question)
                                                          for _ in range(64)]
    settings = RunSettings(steps=args.steps, early_step=1, lr=args.lr, padding_from=args.padding_from,
                           vision_lr_scale=args.vision_lr_scale)
    stage = Stage("probe", {}, args.steps, args.lr, settings.warmup, args.seed + 2)
    opt = optimizer(trainer.net, settings)
    gen = torch.Generator().manual_seed(args.seed + 6)
    losses, records, start = [], [], time.monotonic()
    for step in range(1, args.steps + 1):
        batch = fixed if args.question == "memorize" else [probe_example(rng, args.question)
                                                           for _ in range(args.batch)]
        losses.append(float(training_step(opt, trainer, batch, gen, learning_rate(stage, step),
                                          padding_targets(settings, step))))
        if step % args.every == 0 or step == args.steps:
            trainer.net.eval()
            accuracy, answer_accuracy = one_pass_accuracy(trainer, held_out)
            record = {"step": step, "loss": float(np.mean(losses[-args.every:])), "accuracy": accuracy,
                      "answer_accuracy": answer_accuracy, "seconds": time.monotonic() - start}
            trainer.net.train()
            records.append(record)
            log(f"step {step}: loss {record['loss']:.4f}, held-out first-token accuracy {accuracy:.3f}, "
                f"whole answer {answer_accuracy:.3f} (n={len(held_out)}), {record['seconds']:.0f} s")
    return records


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.steps < 1 or args.every < 1 or args.batch < 1 or args.pretrain_vision < 0 or args.vision_lr_scale < 0:
        print("probe_world: --steps, --every and --batch must be >= 1, --pretrain-vision and --vision-lr-scale >= 0",
              file=sys.stderr)
        return 2
    probe(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
