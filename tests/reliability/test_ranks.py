"""Ranks must deal out work from one common view of what is finished.

Two ranks run as threads with a real barrier between them; rank 1 is slow to read the finished
ids. If a fast rank could start appending records before the slow one has read them, the two
would shard different todo lists and samples would be lost or generated twice (this happened
under torchrun before the runner got its barrier).
"""
from __future__ import annotations

import threading
import time

from lavida_bench import runner
from lavida_bench.app import build_tasks, finished_work
from lavida_bench.dist import World
from lavida_bench.store import RunStore
from tests.reliability.fakes import SeededModel, make_config, write_items
from tests.reliability.snapshot import ids


def test_slow_rank_sees_the_same_finished_set(tmp_path, monkeypatch):
    write_items(tmp_path / "d", 12)
    cfg = make_config(tmp_path / "run", {"echo": tmp_path / "d"})
    tasks = build_tasks(cfg)
    samples = runner.load_samples(cfg, tasks)
    store = RunStore(cfg.output)
    sync = threading.Barrier(2, timeout=30)
    monkeypatch.setattr(runner, "barrier", lambda world: sync.wait())
    read_finished = RunStore.finished_ids

    def slow_on_rank1(self, task, variant, *samples):
        if threading.current_thread().name == "rank1":
            time.sleep(0.5)  # rank 0 would have written all its records by now
        return read_finished(self, task, variant, *samples)

    monkeypatch.setattr(RunStore, "finished_ids", slow_on_rank1)
    model = SeededModel()
    errors: list[BaseException] = []

    def rank(r: int) -> None:
        try:
            finished = finished_work(cfg, tasks, samples, store)  # each rank reads, as app.execute does
            runner.run_generation(cfg, model, tasks, samples, store, World(rank=r, size=2), finished, progress=False)
        except BaseException as err:  # surfaced below
            errors.append(err)
            sync.abort()

    threads = [threading.Thread(target=rank, args=(r,), name=f"rank{r}") for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert ids(tmp_path / "run", "echo") == [f"s{i:03d}" for i in range(12)]
    assert model.calls == 12  # nothing generated twice
