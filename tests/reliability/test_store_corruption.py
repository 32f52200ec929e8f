"""A damaged run folder: truncated JSON files, malformed record lines, deleted or emptied images,
a record relabelled with another sample's id, leftover temporaries, sample ids that look like
temporaries or attempt images, and reports of runs that were never scored or were killed.
Each fault is either repaired (the image is regenerated) or refused with a `StoreError` that
names the file and line; never a traceback, never a stale "done"."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lavida_bench.api import StoreError
from lavida_bench.app import execute
from lavida_bench.store import RunStore, audit
from tests.reliability.fakes import PaintModel, make_config

ITEMS = [{"id": f"s{i}", "q": f"prompt {i}", "a": "x"} for i in range(4)]


def write_items(folder: Path, items: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))


def cli_main(argv: list[str]) -> int:
    from lavida_bench.cli import main

    return main(argv)


def paint_run(tmp_path: Path, items: list[dict[str, Any]] = ITEMS, model: PaintModel | None = None,
              score: bool = True) -> tuple[Any, PaintModel]:
    data = tmp_path / "data"
    if not (data / "items.jsonl").exists():
        write_items(data, items)
    model = model or PaintModel()
    outcome = execute(make_config(tmp_path / "run", {"paint": data}), model=model, score=score, progress=False)
    return outcome, model


def outputs_file(tmp_path: Path) -> Path:
    return RunStore(tmp_path / "run").stage_path("paint", "plain", "outputs")


def rewrite_lines(path: Path, edit: Any) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(line if isinstance(line, str) else json.dumps(line) + "\n" for line in edit(lines)))


class CountingPaint(PaintModel):
    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[str] = []

    def generate(self, requests):  # type: ignore[no-untyped-def]
        self.prompts += [r.prompt for r in requests]
        return super().generate(requests)


# --- truncated JSON files -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["manifest.json"])
def test_truncated_json_file_is_named_with_its_line(tmp_path, name):
    paint_run(tmp_path)
    path = tmp_path / "run" / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(StoreError) as caught:
        paint_run(tmp_path)
    assert str(path) in str(caught.value) and "line" in str(caught.value)


def test_truncated_metrics_json_is_rebuilt_from_the_score_records(tmp_path):
    first, _ = paint_run(tmp_path)
    path = tmp_path / "run" / "metrics.json"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    again, model = paint_run(tmp_path, model=CountingPaint())
    assert model.prompts == [] and again.results["tasks"] == first.results["tasks"]
    assert json.loads(path.read_text())["tasks"] == first.results["tasks"]


def test_truncated_manifest_exits_2_at_the_cli(tmp_path, capsys):
    paint_run(tmp_path)
    path = tmp_path / "run" / "manifest.json"
    path.write_bytes(path.read_bytes()[:40])
    assert cli_main(["score", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err


# --- malformed record lines -----------------------------------------------------------------------

@pytest.mark.parametrize("damage, expected", [
    (lambda r: {k: v for k, v in r.items() if k != "id"}, "'id'"),
    (lambda r: [1, 2, 3], "JSON object"),
    (lambda r: {**r, "id": 7}, "'id'"),
])
def test_malformed_record_is_named_by_file_and_line(tmp_path, damage, expected):
    paint_run(tmp_path)
    path = outputs_file(tmp_path)
    rewrite_lines(path, lambda lines: [lines[0], damage(lines[1]), *lines[2:]])
    with pytest.raises(StoreError) as caught:
        paint_run(tmp_path)
    message = str(caught.value)
    assert f"{path}: line 2" in message and expected in message


# --- images that went missing ---------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["deleted", "zero bytes", "truncated"])
def test_missing_or_broken_image_is_regenerated_on_resume(tmp_path, damage):
    first, _ = paint_run(tmp_path)
    store = RunStore(tmp_path / "run")
    png = tmp_path / "run" / store.outputs("paint", "plain")["s2"]["output"]["image"]
    original = png.read_bytes()
    if damage == "deleted":
        png.unlink()
    else:
        png.write_bytes(b"" if damage == "zero bytes" else original[: len(original) // 2])
    again, model = paint_run(tmp_path, model=CountingPaint())
    assert model.prompts == ["prompt 2"]  # only the damaged sample went back to the model
    assert png.read_bytes() == original  # the same seed paints the same image
    assert again.errors == 0 and audit(store) == []
    assert again.results["tasks"]["paint"]["plain"] == first.results["tasks"]["paint"]["plain"]


def test_scores_follow_a_regenerated_image(tmp_path):
    """A score belongs to the image bytes it was computed on: a regenerated image that differs
    (a nondeterministic GPU run) is scored again, never left with the old score."""
    paint_run(tmp_path)
    store = RunStore(tmp_path / "run")
    rel = store.outputs("paint", "plain")["s1"]["output"]["image"]
    (tmp_path / "run" / rel).unlink()

    class OtherColours(CountingPaint):
        def generate(self, requests):  # type: ignore[no-untyped-def]
            self.prompts += [r.prompt for r in requests]
            from PIL import Image

            from lavida_bench.api import Result, Trace
            return [Result(image=Image.new("RGB", (16, 16), (255, 0, 0)), trace=Trace(nfe=1)) for _ in requests]

    paint_run(tmp_path, model=OtherColours())
    assert store.scores("paint", "plain")["s1"]["scores"]["red"] == 1.0


# --- a record relabelled with another sample's id -------------------------------------------------

def test_record_relabelled_with_another_id_is_detected(tmp_path):
    paint_run(tmp_path)
    path = outputs_file(tmp_path)

    def swap(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_id = {r["id"]: r for r in lines}
        by_id["s3"] = {**by_id["s0"], "id": "s3"}  # s0's output now claims to be s3's
        return [by_id[i] for i in sorted(by_id)]

    rewrite_lines(path, swap)
    with pytest.raises(StoreError) as caught:
        paint_run(tmp_path)
    message = str(caught.value)
    assert str(path) in message and "line 4" in message and "'s3'" in message


def test_text_record_relabelled_with_another_id_is_detected(tmp_path):
    """Text outputs name no image: the record's sample digest catches the swap."""
    data = tmp_path / "data"
    write_items(data, ITEMS)
    cfg = make_config(tmp_path / "run", {"echo": data})
    from tests.reliability.fakes import SeededModel

    execute(cfg, model=SeededModel(), progress=False)
    path = RunStore(tmp_path / "run").stage_path("echo", "plain", "outputs")
    rewrite_lines(path, lambda lines: [lines[0], {**lines[0], "id": lines[1]["id"]}, *lines[2:]])
    with pytest.raises(StoreError, match=r"line 2.*'s1'"):
        execute(cfg, model=SeededModel(), progress=False)


# --- temporaries and file names -------------------------------------------------------------------

def test_stale_temporaries_in_the_run_root_are_reported_and_removed(tmp_path):
    paint_run(tmp_path)
    root = tmp_path / "run"
    stale = [root / ".metrics.json.tmp4242", root / ".manifest.json.tmp17"]
    for p in stale:
        p.write_text("{")
    problems = audit(RunStore(root))
    assert all(any(p.name in problem for problem in problems) for p in stale)
    paint_run(tmp_path)
    assert not any(p.exists() for p in stale) and audit(RunStore(root)) == []


def test_sample_id_that_looks_like_a_temporary_keeps_its_image(tmp_path):
    items = [{"id": ".x.tmp1", "q": "a", "a": "x"}, {"id": "y", "q": "b", "a": "x"}]
    paint_run(tmp_path, items)
    again, model = paint_run(tmp_path, items, model=CountingPaint())  # resume: repairs first
    assert model.prompts == [] and again.errors == 0
    assert audit(RunStore(tmp_path / "run")) == []


def test_attempt_images_never_collide_with_sample_ids(tmp_path):
    store = RunStore(tmp_path)
    names = {store.image_relpath("t", "v", "k", attempt=0), store.image_relpath("t", "v", "k-attempt0"),
             store.image_relpath("t", "v", "k"), store.image_relpath("t", "v", "k", attempt=1),
             store.image_relpath("t", "v", "a/b"), store.image_relpath("t", "v", "a_b"),
             store.image_relpath("t", "v", "a%2Fb")}
    assert len(names) == 7
    assert not any(Path(n).name.startswith(".") for n in
                   [store.image_relpath("t", "v", ".x.tmp1"), store.image_relpath("t", "v", ".")])


# --- reports of unfinished runs -------------------------------------------------------------------

def report_page(run: Path, capsys: pytest.CaptureFixture) -> str:
    """`lavida-bench report RUN` succeeds without a traceback; the page is complete."""
    code = cli_main(["report", str(run)])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    page = (run / "report.html").read_text()
    assert page.rstrip().endswith("</html>")
    return page


def test_report_of_an_unscored_run_says_so(tmp_path, capsys):
    paint_run(tmp_path, score=False)
    assert "not scored" in report_page(tmp_path / "run", capsys)


def test_report_of_a_killed_run_says_so(tmp_path, capsys):
    paint_run(tmp_path)
    run = tmp_path / "run"
    (run / "metrics.json").unlink()  # killed during generation: no metrics, shards not merged
    records = run / "records" / "paint" / "plain"
    (records / "outputs.jsonl").rename(records / "outputs.part-r0.jsonl")
    page = report_page(run, capsys)
    assert "not scored" in page and "generation did not finish for paint/plain" in page


KILL_MID_WRITE = """
import builtins, io, os, sys
from pathlib import Path
real_open = io.open

class Dying:
    def __init__(self, f): self._f = f
    def write(self, data):
        self._f.write(data[: len(data) // 2]); self._f.flush(); os._exit(137)
    def __getattr__(self, name): return getattr(self._f, name)
    def __enter__(self): return self
    def __exit__(self, *exc): self._f.__exit__(*exc)

def dying_open(file, *args, **kwargs):
    f = real_open(file, *args, **kwargs)
    return Dying(f) if "report.html" in str(file) else f

builtins.open = io.open = dying_open
from lavida_bench.reports import write_report
write_report(Path(sys.argv[1]))
"""


def test_a_kill_while_writing_the_report_never_leaves_a_truncated_page(tmp_path):
    paint_run(tmp_path)
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, str(run)], capture_output=True, timeout=120, check=False,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 137, proc.stderr.decode()[-2000:]
    page = run / "report.html"
    assert not page.exists() or page.read_text().rstrip().endswith("</html>")
