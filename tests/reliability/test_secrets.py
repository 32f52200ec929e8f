"""Secrets never reach disk or the console: a run whose model, scorer, outputs, manifest and
config all carry API keys from the environment writes none of them to any file, report or log."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest

from lavida_bench.api import Request, Result, Sample
from lavida_bench.app import execute
from lavida_bench.tasks.base import ScoreContext
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


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "HF_TOKEN", "MY_JUDGE_KEY", "DB_PASSWORD", "DB_PASS",
                                  "AWS_SECRET_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "JUDGE_AUTH",
                                  # parts glued to other words (issue 13): a substring match catches them
                                  "CLIENTSECRET", "DBPASSWORD", "MY_SECRETS", "SECRETKEY", "apikey"])
def test_secret_variable_names(monkeypatch, name):
    from lavida_bench.safety import redact

    monkeypatch.setenv(name, "value-0123456789")
    assert redact("x value-0123456789 y") == "x [REDACTED] y"


def test_ordinary_variables_and_short_values_are_not_redacted(monkeypatch):
    from lavida_bench.safety import MIN_SECRET_LEN, redact

    monkeypatch.setenv("LAVIDA_DATA_ROOT", "/data/benchmarks")  # no secret part in the name
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")  # a secret part, but a 5-character value
    monkeypatch.setenv("SHORT_TOKEN", "x" * (MIN_SECRET_LEN - 1))
    text = f"/data/benchmarks false {'x' * (MIN_SECRET_LEN - 1)}"
    assert redact(text) == text


def test_the_readme_states_the_rule_the_code_applies():
    """README.md's secrets paragraph lists exactly the name parts the code matches, and the
    minimum value length."""
    from pathlib import Path

    from lavida_bench.safety import MIN_SECRET_LEN, SECRET_NAME_PARTS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    paragraph = readme[readme.index("- **Secrets**"):]
    paragraph = paragraph[:paragraph.index("\n- **")]
    assert re.findall(r"`\*([A-Z]+)\*`", paragraph) == list(SECRET_NAME_PARTS)
    assert f"{MIN_SECRET_LEN} characters" in paragraph and "backends.judge_api_key_env" in paragraph


def test_the_judge_key_is_redacted_whatever_its_name(monkeypatch):
    from lavida_bench import safety
    from lavida_bench.backends import Backends, BackendsConfig

    monkeypatch.setattr(safety, "CREDENTIAL_VARIABLES", set())
    monkeypatch.setenv("LAVIDA_JUDGE_BEARER", "bearer-0123456789")  # matches no secret part
    assert safety.redact("sent bearer-0123456789") == "sent bearer-0123456789"
    Backends(BackendsConfig(judge="openai", judge_url="http://127.0.0.1:9/v1",
                            judge_api_key_env="LAVIDA_JUDGE_BEARER"))  # built at the start of a run
    assert safety.redact("sent bearer-0123456789") == "sent [REDACTED]"


def test_a_numeric_secret_cannot_corrupt_json(tmp_path, monkeypatch):
    """Redaction walks the object before it is serialized: a secret that is a substring of a
    number (a seed) leaves the number alone and the JSON valid (issue 13: `"seed": [REDACTED]`)."""
    from lavida_bench.store import JsonlWriter, write_json

    monkeypatch.setenv("X_TOKEN", "27631858")
    record = {"id": "a", "seed": 27631858, "note": "token 27631858", "27631858": [1.27631858]}
    expected = {"id": "a", "seed": 27631858, "note": "token [REDACTED]", "[REDACTED]": [1.27631858]}
    with JsonlWriter(tmp_path / "r.jsonl") as writer:
        writer.write(record)
    assert json.loads((tmp_path / "r.jsonl").read_text()) == expected
    write_json(tmp_path / "m.json", record)
    assert json.loads((tmp_path / "m.json").read_text()) == expected


def test_a_secret_in_the_config_neither_blocks_resume_nor_shows_in_a_refusal(tmp_path, monkeypatch):
    from lavida_bench.api import StoreError

    token = "27631858"  # also the seed: the manifest must stay valid JSON and resumable
    monkeypatch.setenv("X_TOKEN", token)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    write_items(tmp_path / "echo", 3)
    url = f"backends.judge_url=http://127.0.0.1:9/v1?key={OPENAI}"  # a key inside a config value

    def config(*extra: str) -> Any:
        return make_config(tmp_path / "run", {"echo": tmp_path / "echo"}, extra=(f"seed={token}", url, *extra))

    assert execute(config(), model=PaintModel(), progress=False).errors == 0
    manifest = json.loads((tmp_path / "run/manifest.json").read_text())
    assert manifest["config"]["seed"] == int(token) and OPENAI not in json.dumps(manifest)
    assert execute(config(), model=PaintModel(), progress=False).errors == 0  # the resume is accepted
    with pytest.raises(StoreError, match="different settings") as refused:
        execute(config("seed=5", f"backends.judge_url=http://127.0.0.1:8/v1?key={OPENAI}"),
                model=PaintModel(), progress=False)
    assert OPENAI not in str(refused.value) and token not in str(refused.value)


def test_validate_does_not_echo_a_key_from_the_config(tmp_path, monkeypatch, capsys):
    from lavida_bench.cli import main
    from tests.reliability.fakes import register

    register()
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    write_items(tmp_path / "echo", 2)
    code = main(["validate", f"tasks.echo.data={tmp_path / 'echo'}", "model.kind=constant",
                 f"backends.judge_url=http://127.0.0.1:9/v1?key={OPENAI}"])
    printed = capsys.readouterr()
    assert code == 0 and "key=[REDACTED]" in printed.out
    assert OPENAI not in printed.out + printed.err
