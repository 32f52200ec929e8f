import os
from pathlib import Path

import pytest

from lavida_bench.api import DataError, StoreError
from lavida_bench.safety import redact, resolve_inside
from lavida_bench.store import JsonlWriter


def test_record_paths_cannot_escape_the_dataset_folder(tmp_path):
    (tmp_path / "imgs").mkdir()
    assert resolve_inside(tmp_path, "imgs/a.png", "rec 1 field image") == (tmp_path / "imgs/a.png").resolve()
    with pytest.raises(DataError, match="rec 1 field image: path '../secret' escapes"):
        resolve_inside(tmp_path, "../secret", "rec 1 field image")
    with pytest.raises(DataError, match="absolute path '/etc/passwd' not allowed"):
        resolve_inside(tmp_path, "/etc/passwd", "rec 2 field image")
    with pytest.raises(DataError, match="expected a relative file path"):
        resolve_inside(tmp_path, None, "rec 3 field image")


def test_secret_values_from_the_environment_are_redacted(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    assert redact("401 for key sk-test-0123456789!") == "401 for key [REDACTED]!"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full to simulate a full disk")
def test_disk_full_names_the_path_and_keeps_earlier_records(tmp_path):
    good = tmp_path / "records.jsonl"
    with JsonlWriter(good) as w:
        w.write({"id": "a"})
    full = tmp_path / "full.jsonl"
    os.symlink("/dev/full", full)
    writer = JsonlWriter(full)
    with pytest.raises(StoreError, match="full.jsonl"):
        writer.write({"id": "b"})
    assert good.read_text() == '{"id": "a"}\n'


def test_error_records_never_contain_secrets(tmp_path, monkeypatch):
    from lavida_bench.app import execute
    from lavida_bench.config import load_config
    from tests.harness.fake import SeededModel, register, write_items

    monkeypatch.setenv("JUDGE_API_KEY", "secret-value-42424242")

    class Leaky(SeededModel):
        def understand(self, requests):
            raise RuntimeError("auth failed with secret-value-42424242")

    register()
    write_items(tmp_path / "d", 3)
    cfg = load_config(None, [f"output={tmp_path / 'r'}", f"tasks.echo.data={tmp_path / 'd'}", "model.kind=constant"])
    outcome = execute(cfg, model=Leaky(), progress=False)
    assert outcome.errors == 3
    for f in (tmp_path / "r").rglob("*"):
        if f.is_file():
            assert "secret-value-42424242" not in f.read_text(errors="ignore"), f
