"""Secrets never reach disk or the console: a run whose model, scorer, outputs, manifest and
config all carry API keys from the environment writes none of them to any file, report or log."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from lavida_bench.tasks.base import Sample, ScoreContext

from lavida_bench.app import execute
from lavida_bench.protocol import Request, Result
from tests.harness.fake import EchoTask
from tests.reliability.fakes import PaintModel, PaintTask, make_config, write_items

OPENAI = "sk-test-SECRET-0123456789abcdef"
CUSTOM = 'judge-SECRET-"quoted"\\back'  # JSON escapes it: redaction must catch the escaped form too


class LeakyModel(PaintModel):
    """Puts the keys everywhere a model can: error messages, answers, its manifest entry."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "auth": f"Bearer {OPENAI}"}

    def understand(self, requests: list[Request]) -> list[Result]:
        if any(r.prompt == "FAIL" for r in requests):
            raise RuntimeError(f"401 Unauthorized for key {OPENAI} / {CUSTOM}")
        return [Result(text=f"the key is {OPENAI} and {CUSTOM}") for _ in requests]


def leaky_score(self: Any, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
    raise ConnectionError(f"judge rejected Authorization: Bearer {OPENAI} ({CUSTOM})")


def chatty_score(self: Any, sample: Sample, output: Mapping[str, Any], ctx: ScoreContext) -> dict[str, Any]:
    return {"correct": 0.0, "judge_reply": f"echoing the request headers: Bearer {OPENAI}"}


def test_no_file_or_log_a_run_writes_contains_a_key(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    monkeypatch.setenv("MY_JUDGE_KEY", CUSTOM)
    monkeypatch.setattr(PaintTask, "score", leaky_score)  # scorer errors carry the key
    monkeypatch.setattr(EchoTask, "score", chatty_score)  # and so do successful score records
    for task in ("echo", "paint"):
        write_items(tmp_path / task, 4, fail=(1,))
    out = tmp_path / "run"
    cfg = make_config(out, {"echo": tmp_path / "echo", "paint": tmp_path / "paint"}, extra=(f"name=run-{OPENAI}",))
    outcome = execute(cfg, model=LeakyModel(), progress=True)
    assert outcome.errors > 0  # the failures happened and were recorded
    from lavida_bench.reports import write_report

    write_report(out)
    logs = capfd.readouterr()
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {"manifest.json", "scores.jsonl", "metrics.json", "report.md", "report.html"} <= {p.name for p in written}
    texts = {str(p): p.read_bytes().decode("utf-8", "replace") for p in written}
    texts["<stdout>"], texts["<stderr>"] = logs.out, logs.err
    needles = [OPENAI, CUSTOM, CUSTOM.replace('"', '\\"').replace("\\back", "\\\\back"), "judge-SECRET"]
    leaks = [(where, n) for where, text in texts.items() for n in needles if n in text]
    assert not leaks
    assert "[REDACTED]" in (out / "records/echo/plain/outputs.jsonl").read_text()
    assert "[REDACTED]" in (out / "records/paint/plain/scores.jsonl").read_text()
    assert "[REDACTED]" in (out / "records/echo/plain/scores.jsonl").read_text()
    assert "[REDACTED]" in (out / "manifest.json").read_text()


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "HF_TOKEN", "MY_JUDGE_KEY", "DB_PASSWORD",
                                  "AWS_SECRET_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS"])
def test_secret_variable_names(monkeypatch, name):
    from lavida_bench.safety import redact

    monkeypatch.setenv(name, "value-0123456789")
    assert redact("x value-0123456789 y") == "x [REDACTED] y"


def test_ordinary_variables_are_not_redacted(monkeypatch):
    from lavida_bench.safety import redact

    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false-but-long-enough")
    monkeypatch.setenv("MONKEY", "banana-banana")  # ends in KEY, but is the word monkey
    assert redact("false-but-long-enough banana-banana") == "false-but-long-enough banana-banana"
