"""Train the micro Lavida-O of the synthetic world from a seed (see lavida_bench/world/run.py).

    python tools/train_world.py --out assets/world-run --seed 0
    python tools/train_world.py --out assets/tuned --seed 0 --tune-steps 2000 --continue-from assets/world-run
    python tools/train_world.py --out assets/recipe --seed 0 --lr 1e-3 --vq-from lavida_bench/world/weights

    python tools/train_world.py --out assets/world-run --seed 0 --resume    # after a kill
    python tools/train_world.py --out assets/world-run --export-snapshot assets/so-far   # while it runs

Writes <out>/checkpoint (release layout), <out>/early, <out>/loss.jsonl and <out>/train.json.
With --continue-from, a finished run of the same settings stands for the first stages and only
the tuning stage runs (the same weights as the one command without it). With --vq-from, a
finished run of the same seed and VQ steps (the shipped weights' folder is one) lends its VQ
tokenizer for the VQ stage, which depends on nothing else: a network recipe is tried without
the stage's 40 minutes (train.json records the source). With --resume, a killed run goes on
from its last snapshot in <out>/resume (the same options it was started with; the same weights
as an uninterrupted run). With --export-snapshot DEST, nothing trains: the latest snapshot of the
run in <out> is written to DEST as a checkpoint folder, to evaluate the run before it ends
(tools/eval_world.py DEST).
Exit codes: 0 trained (or exported), 2 bad arguments, a base run that does not match, an output
folder that already holds a run, or no snapshot to resume or export.
"""
from __future__ import annotations

import argparse
import shlex
import sys


HELP = {"vq_steps": "VQ tokenizer training steps", "vision_steps": "vision pretraining steps (0: none)",
        "steps": "network training steps",
        "early_step": "step whose weights are kept as <out>/early", "warmup": "linear learning-rate warm-up steps",
        "padding_from": "step from which text answers' EOS padding is a target",
        "object_weight": "image-loss weight of an object's codes against the background's",
        "object_masks": "probability that an image's mask also covers all its object codes",
        "vision_lr_scale": "vision side's learning rate as a share of --lr (the release: 0.2)",
        "weight_decay": "AdamW weight decay (the release: 0)",
        "vision_target": "vision pretraining's target: classes (the shipped weights), words (features in the "
                         "space of the words naming the object) or places (words plus a code of the cell's place)",
        "mix": "first network stage's task shares, task=share,... summing to 1 (lavida_bench/world/mix.py)",
        "phases": "stages between the first and the tuning stage, space-separated mix@steps entries, e.g. "
                  "'color_qa=1@600' (mixes as --mix; at --lr)",
        "tune_steps": "tuning stage steps (0: none)",
        "tune_lr": "tuning stage's peak learning rate",
        "tune_mix": "tuning stage's task shares, as --mix (default: mix.TUNE_MIX)",
        "threads": "torch CPU threads"}


def parse(argv: list[str]) -> argparse.Namespace:
    """One option per RunSettings field, with its default (the settings' defaults live there only)."""
    import dataclasses

    from lavida_bench.world.run import RunSettings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="run folder (must not hold a previous run)")
    p.add_argument("--continue-from", help="a finished run folder (same settings, no tuning) to tune")
    p.add_argument("--vq-from", metavar="RUN", help="a finished run folder of the same --seed and --vq-steps whose "
                   "VQ tokenizer stands for the VQ stage")
    p.add_argument("--resume", action="store_true", help="go on from the last snapshot of a killed run in --out")
    p.add_argument("--export-snapshot", metavar="DEST", help="write the latest snapshot of the run in --out to DEST "
                   "as a checkpoint folder, and stop (the other options are ignored)")
    for field in dataclasses.fields(RunSettings):
        p.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default,
                       help=HELP.get(field.name))
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace):
    """The RunSettings the parsed options name."""
    import dataclasses

    from lavida_bench.world.run import RunSettings

    return RunSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RunSettings)})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    from lavida_bench.world.run import export_snapshot, train_world

    try:
        if args.export_snapshot:
            print(f"exported: {export_snapshot(args.out, args.export_snapshot)}")
            return 0
        settings = settings_from(args)
        record = train_world(settings, args.out, command=shlex.join(["python", "tools/train_world.py", *argv]),
                             continue_from=args.continue_from, resume=args.resume, vq_from=args.vq_from)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        print(f"train_world: {err}", file=sys.stderr)
        return 2
    print(f"trained: {args.out}/checkpoint (final losses {record['final_losses']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
