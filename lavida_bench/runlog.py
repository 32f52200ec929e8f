"""The run folder's log file: what ran, warnings, errors and timings, beside the console output.

Rank 0 writes RUN/run.log, other ranks RUN/run.r<rank>.log (appended to on every resume). Python
warnings raised during the run go to the same file. Every line passes through `safety.redact`.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lavida_bench.api import StoreError
from lavida_bench.dist import World
from lavida_bench.safety import redact

LOGGER = "lavida_bench"
LOG_NAME = "run.log"


def log_name(rank: int) -> str:
    return LOG_NAME if rank == 0 else f"run.r{rank}.log"


def is_log_file(path: Path) -> bool:
    """A log file this module writes (a folder holding only these is still an empty run folder)."""
    return path.name == LOG_NAME or (path.name.startswith("run.r") and path.suffix == ".log")


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@contextmanager
def run_log(root: Path, world: World) -> Iterator[Path]:
    """Log the lavida_bench loggers and Python warnings to the run folder while the block runs;
    an exception that ends the run is logged before it propagates."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(root / log_name(world.rank), encoding="utf-8")
    except OSError as err:  # before any model time: an unusable output folder is bad input
        raise StoreError(f"{root}: cannot create the run folder ({err.strerror or err})") from err
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(LOGGER), logging.getLogger("py.warnings")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield root / log_name(world.rank)
    except BaseException as err:
        logging.getLogger(LOGGER).error("stopped: %s: %s", type(err).__name__, err)
        raise
    finally:
        logging.captureWarnings(False)
        for lg, level in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(level)
        handler.close()
