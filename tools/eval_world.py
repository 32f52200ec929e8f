"""Measure a world checkpoint on freshly rendered scenes (see lavida_bench/world/evaluate.py).

    python tools/eval_world.py assets/world/seed0/checkpoint --n 24

Prints one JSON object. Exit codes: 0 measured, 2 a folder that is not a checkpoint.
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--n", type=int, default=24, help="items per measure")
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    import torch

    from lavida_bench.api import CheckpointError
    from lavida_bench.world.evaluate import evaluate

    torch.set_num_threads(1)
    try:
        print(json.dumps(evaluate(args.checkpoint, args.n, args.seed), indent=2))
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"eval_world: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
