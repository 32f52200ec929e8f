"""Train the micro Lavida-O of the synthetic world from a seed (see lavida_bench/world/run.py).

    python tools/train_world.py --out assets/world-run --seed 0

Writes <out>/checkpoint (release layout), <out>/early, <out>/loss.jsonl and <out>/train.json.
Exit codes: 0 trained, 2 bad arguments or an output folder that already holds a run.
"""
from __future__ import annotations

import argparse
import shlex
import sys


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="run folder (must not hold a previous run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vq-steps", type=int, default=5000, help="VQ tokenizer training steps")
    p.add_argument("--steps", type=int, default=9000, help="network training steps")
    p.add_argument("--early-step", type=int, default=600, help="step whose weights are kept as <out>/early")
    p.add_argument("--text-batch", type=int, default=16)
    p.add_argument("--image-batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=50, help="linear learning-rate warm-up steps")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace):
    """The RunSettings the parsed options name."""
    from lavida_bench.world.run import RunSettings

    return RunSettings(seed=args.seed, vq_steps=args.vq_steps, steps=args.steps, early_step=args.early_step,
                       text_batch=args.text_batch, image_batch=args.image_batch, lr=args.lr,
                       warmup=args.warmup, threads=args.threads)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    from lavida_bench.world.run import train_world

    try:
        settings = settings_from(args)
        record = train_world(settings, args.out, command=shlex.join(["python", "tools/train_world.py", *argv]))
    except (ValueError, FileExistsError) as err:
        print(f"train_world: {err}", file=sys.stderr)
        return 2
    print(f"trained: {args.out}/checkpoint (final losses {record['final_losses']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
