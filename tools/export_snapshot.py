"""Write the latest snapshot of a training run in progress as a checkpoint folder, to evaluate
the run before it ends (lavida_bench/world/run.py `export_snapshot`).

    python tools/export_snapshot.py RUN_FOLDER DEST
    python tools/eval_world.py DEST --n 48

Exit codes: 0 written, 2 no usable snapshot in RUN_FOLDER.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="the run folder given to train_world.py --out")
    p.add_argument("dest", help="the checkpoint folder to write")
    args = p.parse_args(argv)
    from lavida_bench.world.run import export_snapshot

    try:
        folder = export_snapshot(args.run, args.dest)
    except (ValueError, FileNotFoundError) as err:
        print(f"export_snapshot: {err}", file=sys.stderr)
        return 2
    print(f"exported: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
