"""The scoring stage's status is real (issue 12): a judge failure is a scoring error (counted,
exit 1, retried by the next `score`), a score record names the evaluators that produced it, a
changed backend re-scores and the manifest records every score pass; metrics.json is strict
JSON with each metric's meaning and the run's trust facts."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from lavida_bench.app import execute
from lavida_bench.cli import main
from lavida_bench.config import load_config
from lavida_bench.tasks import TASKS

REPLY = "Brief reasoning: fine.\nPrompt Compliance: 4\nVisual Naturalness: 3\nPhysical & Detail Integrity: 5"


class Judge:
    """A local OpenAI-compatible server: answers 500 while `healthy` is False; counts requests."""

    def __init__(self) -> None:
        self.healthy, self.requests = False, 0
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                judge.requests += 1
                code, body = (200, {"choices": [{"message": {"content": REPLY}}]}) if judge.healthy else \
                    (500, {"error": "down"})
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def judge() -> Iterator[Judge]:
    server = Judge()
    yield server
    server.server.shutdown()
    server.server.server_close()


def strict(path: Path) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{path}: {name} is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def imgedit_run(tmp_path: Path, judge: Judge) -> tuple[list[str], Path]:
    data = TASKS.get("imgedit").make_fixture(tmp_path / "data")
    out = tmp_path / "run"
    overrides = [f"output={out}", "model.kind=constant", f"tasks.imgedit.data={data}", "tasks.imgedit.variants=[plain]",
                 "tasks.imgedit.options.crop_size=64", "backends.judge=openai", f"backends.judge_url={judge.url}",
                 "backends.judge_api_key_env=''", "backends.judge_max_retries=0", "backends.judge_timeout_s=5"]
    return overrides, out


def score_records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "records/imgedit/plain/scores.jsonl").read_text().splitlines()]


def test_failed_judge_is_a_scoring_error_retried_by_the_next_score(tmp_path: Path, judge: Judge,
                                                                   capsys: pytest.CaptureFixture):
    overrides, out = imgedit_run(tmp_path, judge)
    outcome = execute(load_config(None, overrides), progress=False)
    n = len(TASKS.get("imgedit")(tmp_path / "data").load())
    counts = outcome.results["tasks"]["imgedit"]["plain"]["counts"]
    assert counts["scoring_errors"] == n == judge.requests and counts["scored"] == 0 and outcome.errors == n
    doc = strict(out / "metrics.json")
    assert doc["trust"]["comparable_with_paper"] is False
    assert f"imgedit: {n} scoring error(s) (judge or evaluator failures)" in doc["trust"]["reasons"]
    assert main(["score", str(out)]) == 1  # still down: the same requests, still errors
    assert judge.requests == 2 * n
    judge.healthy = True
    assert main(["score", str(out)]) == 0
    assert judge.requests == 3 * n  # exactly the missing ones, once each
    console = capsys.readouterr().out.rstrip().splitlines()  # the trust facts come last
    assert console[-2:] == ["trust: Not comparable with the paper's numbers:",
                            "  - constant reference baseline, not a model"]  # official judge, no errors left
    assert strict(out / "metrics.json")["tasks"]["imgedit"]["plain"]["counts"]["scored"] == n
    assert main(["score", str(out)]) == 0 and judge.requests == 3 * n  # nothing left to do


def test_a_changed_backend_rescores_and_the_manifest_says_which(tmp_path: Path, judge: Judge):
    judge.healthy = True
    overrides, out = imgedit_run(tmp_path, judge)
    execute(load_config(None, overrides), progress=False)
    first = {r["id"]: r["backend"] for r in score_records(out)}
    assert main(["score", str(out), "backends.judge=standin"]) == 0
    latest = {}
    for r in score_records(out):
        latest[r["id"]] = r
    assert all(latest[i]["backend"] != b for i, b in first.items())  # every record re-scored by the stand-in
    manifest = strict(out / "manifest.json")
    assert [p["backends"]["judge"]["name"] for p in manifest["scoring"]] == ["openai", "standin"]
    assert manifest["backends"]["judge"]["name"] == "standin"
    trust = strict(out / "metrics.json")["trust"]
    assert "imgedit: stand-in judge (shapes world only)" in trust["reasons"]
    lines = len(score_records(out))
    assert main(["score", str(out), "backends.judge=standin"]) == 0 and len(score_records(out)) == lines
    assert main(["score", str(out), "backends.judge=standin", "--force"]) == 0
    assert len(score_records(out)) == lines + len(first)  # --force re-scores every record
    assert strict(out / "manifest.json")["scoring"][-1]["force"] is True


def test_metrics_json_is_strict_and_every_metric_says_what_it_means(tmp_path: Path):
    """Every task's metrics, including a null one (FID over a single image), with direction and
    scale; the run's trust facts name the stand-ins and the tiny model."""
    out = tmp_path / "run"
    overrides = [f"output={out}", "model.kind=constant", "backends.inception=standin"]
    for name in TASKS.names():
        if name in ("echo", "paint"):
            continue
        data = TASKS.get(name).make_fixture(tmp_path / "data" / name)
        overrides += [f"tasks.{name}.data={data}", f"tasks.{name}.variants=[{TASKS.get(name).variants[0]}]"]
    overrides += ["tasks.fid30k.limit=1", "tasks.imgedit.options.crop_size=64", "tasks.geneval.options.resolution=64",
                  "tasks.refcoco.options.splits=[refcoco/val]"]
    overrides += [f"backends.{k}=standin" for k in ("detector", "color", "vqa", "judge")]
    execute(load_config(None, overrides), progress=False)
    doc = strict(out / "metrics.json")
    assert doc["format"] == "lavida-bench/metrics/2"
    for task, variants in doc["tasks"].items():
        for entry in variants.values():
            for name, m in entry["metrics"].items():
                assert m["direction"] in ("higher", "lower", "diagnostic") and m["scale"], (task, name)
                assert (m["value"] is None) == ("reason" in m), (task, name)
    fid = doc["tasks"]["fid30k"]["plain"]["metrics"]["fid"]
    assert fid["value"] is None and fid["reason"] == "undefined on 1 sample(s)" and fid["direction"] == "lower"
    trust = doc["trust"]
    assert trust["comparable_with_paper"] is False and "constant reference baseline, not a model" in trust["reasons"]
    assert "fid30k: limit=1 (a subset of the benchmark)" in trust["reasons"]
    assert ("refcoco: paper splits missing from the data: refcoco/testA, refcoco/testB, refcoco+/val, refcoco+/testA, "
            "refcoco+/testB, refcocog/val, refcocog/test") in trust["reasons"]
    assert trust["tasks"]["mmmu"]["reasons"] == ["constant reference baseline, not a model"]


def test_every_declared_decomposition_reproduces_the_stored_value(tmp_path: Path):
    """What metrics.json says a metric is computed from (its task's MetricSpec) rebuilds it
    exactly from the score records: compare's paired differences use the task's own definition."""
    import numpy as np

    from lavida_bench.reports.load import load_run
    from lavida_bench.reports.paired import estimator_for

    out = tmp_path / "run"
    overrides = [f"output={out}", "model.kind=constant"]
    for name in ("geneval", "dpg_bench", "imgedit", "refcoco", "mmmu", "chartqa"):
        data = TASKS.get(name).make_fixture(tmp_path / "data" / name)
        overrides += [f"tasks.{name}.data={data}", f"tasks.{name}.variants=[{TASKS.get(name).variants[0]}]"]
    overrides += ["tasks.imgedit.options.crop_size=64", "tasks.geneval.options.resolution=64"]
    overrides += [f"backends.{k}=standin" for k in ("detector", "color", "vqa", "judge")]
    execute(load_config(None, overrides), progress=False)
    run = load_run(out)
    checked = 0
    for task, variants in run.metrics.items():
        for variant, entry in variants.items():
            scores = run.ok_scores(task, variant)
            for name, m in entry["metrics"].items():
                est = estimator_for(m)
                if est is None or m["value"] is None:
                    continue
                sel = est.select(scores)
                values = np.array([v for v, _ in sel.values()])
                groups = np.array([g for _, g in sel.values()], dtype=object)
                assert est.statistic(values, groups) == pytest.approx(m["value"], abs=1e-9), (task, name)
                assert len(sel) == m["n"] or est.macro, (task, name)
                checked += 1
    assert checked >= 20


def test_trust_facts_name_every_reason_in_one_place():
    from lavida_bench.model.config import LavidaConfig
    from lavida_bench.trust import trust_facts

    official = {kind: {"name": name, "standin": False, "official": True, "official_choice": name}
                for kind, name in {"detector": "mmdet", "color": "open_clip", "vqa": "mplug"}.items()}
    manifest = {"model": {"name": "lavida_o", "config": LavidaConfig.official().summary()}, "backends": official,
                "config": {"limit": None, "tasks": {"geneval": {"limit": None}}}}
    clean = {"plain": {"counts": {"samples": 4, "scored": 4, "generation_errors": 0, "scoring_errors": 0, "missing": 0}}}
    notes = {"geneval": {"evaluators": ["detector", "color"]}, "dpg_bench": {"evaluators": ["vqa"]}}
    ok = trust_facts(manifest, {"geneval": clean, "dpg_bench": clean}, notes)
    assert ok["comparable_with_paper"] is True and ok["reasons"] == []
    manifest["backends"]["vqa"] = {"name": "blip", "standin": False, "official": False, "official_choice": "mplug"}
    manifest["config"]["limit"] = 0.1
    broken = {"plain": {"counts": {"samples": 4, "scored": 2, "generation_errors": 1, "scoring_errors": 1,
                                   "missing": 0}}}
    facts = trust_facts(manifest, {"geneval": clean, "dpg_bench": broken},
                        {**notes, "dpg_bench": {"evaluators": ["vqa"], "deviations": ["grid protocol"]}})
    assert facts["comparable_with_paper"] is False
    assert facts["tasks"]["dpg_bench"]["reasons"] == [
        "vqa 'blip' is not the official evaluator (mplug)", "--limit 0.1 (a subset of the benchmark)", "grid protocol",
        "1 generation error(s)", "1 scoring error(s) (judge or evaluator failures)", "2 sample(s) without a score"]
    assert facts["tasks"]["geneval"]["reasons"] == ["--limit 0.1 (a subset of the benchmark)"]
