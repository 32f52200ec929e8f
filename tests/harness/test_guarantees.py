"""Bookkeeping guarantees that planted bugs once survived: a regenerated output is scored again
(the output hash), a missing sample is counted and fails the command (exit 1), and per-sample
seeds depend on the task as well as on the run seed and sample id."""
import json
from pathlib import Path

from lavida_bench.api import Request, Result, Trace
from lavida_bench.app import execute, score_run
from lavida_bench.cli import main
from lavida_bench.seeds import sample_seed
from lavida_bench.store import RunStore
from tests.harness.fake import SeededModel, write_items
from tests.harness.test_runner import config

OUTPUTS = "records/echo/plain/outputs.jsonl"


class Answering(SeededModel):
    """Answers "q<i>" with the expected "q<i>:0", except the prompts in `wrong`."""

    def __init__(self, wrong: tuple[str, ...] = ()):
        super().__init__()
        self.wrong = wrong
        self.prompts: list[str] = []

    def understand(self, requests: list[Request]) -> list[Result]:
        self.prompts += [r.prompt for r in requests]
        return [Result(text="wrong" if r.prompt in self.wrong else f"{r.prompt}:0", trace=Trace(nfe=1))
                for r in requests]


def drop_record(run: Path, sample_id: str) -> None:
    """Delete one output line, as the store's messages tell a user to do to regenerate it."""
    path = run / OUTPUTS
    lines = [line for line in path.read_text().splitlines() if json.loads(line)["id"] != sample_id]
    path.write_text("".join(line + "\n" for line in lines))


def test_a_regenerated_output_is_scored_again(tmp_path):
    write_items(tmp_path / "d", 4)
    cfg = config(tmp_path / "r", tmp_path / "d")
    first = execute(cfg, model=Answering(), progress=False).results
    assert first["tasks"]["echo"]["plain"]["metrics"]["acc"]["value"] == 1.0
    drop_record(tmp_path / "r", "s001")
    model = Answering(wrong=("q1",))
    again = execute(cfg, model=model, progress=False).results
    assert model.prompts == ["q1"]  # only the dropped sample was generated again
    scores = RunStore(tmp_path / "r").scores("echo", "plain")
    assert scores["s001"]["scores"] == {"correct": 0.0}  # not the stale 1.0 of the old output
    assert again["tasks"]["echo"]["plain"]["metrics"]["acc"]["value"] == 0.75


def test_a_missing_sample_is_counted_and_fails_the_score_command(tmp_path, capsys):
    write_items(tmp_path / "d", 4)
    cfg = config(tmp_path / "r", tmp_path / "d")
    assert execute(cfg, model=Answering(), progress=False).errors == 0
    assert main(["score", str(tmp_path / "r")]) == 0
    drop_record(tmp_path / "r", "s002")
    counts = score_run(cfg, progress=False)["tasks"]["echo"]["plain"]["counts"]
    assert counts["missing"] == 1 and counts["scored"] == 3 and counts["samples"] == 4
    assert main(["score", str(tmp_path / "r")]) == 1
    assert "finished with 1 error(s)" in capsys.readouterr().err


def test_seeds_depend_on_the_task(tmp_path):
    assert sample_seed(0, "echo", "s000") != sample_seed(0, "other", "s000")
    assert sample_seed(0, "echo", "s000") != sample_seed(1, "echo", "s000")
    assert sample_seed(0, "echo", "s000") != sample_seed(0, "echo", "s001")
    write_items(tmp_path / "d", 3)
    execute(config(tmp_path / "r", tmp_path / "d"), model=SeededModel(), progress=False)
    records = RunStore(tmp_path / "r").outputs("echo", "plain")
    assert {i: r["seed"] for i, r in records.items()} == {i: sample_seed(0, "echo", i) for i in records}
