"""Evaluator backends load weights only from the paths the user named (README "What the harness
guarantees"): a name that a library could also read as a download tag is passed as an absolute
path. open_clip is faked (not installed here): the test records what it is asked to load."""
from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from lavida_bench.backends import Backends, BackendsConfig


def fake_open_clip(calls: list[dict[str, Any]]) -> types.ModuleType:
    module = types.ModuleType("open_clip")

    def create_model_and_transforms(name: str, pretrained: str = "", **kwargs: Any):
        calls.append({"name": name, "pretrained": pretrained, **kwargs})
        model = types.SimpleNamespace(eval=lambda: model)
        return model, None, None

    module.create_model_and_transforms = create_model_and_transforms
    module.get_tokenizer = lambda name: None
    return module


def test_open_clip_gets_the_user_file_never_a_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local file named `openai` (relative to the working folder) must not reach open_clip as
    "openai", its tag for downloading OpenAI's weights."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setitem(sys.modules, "open_clip", fake_open_clip(calls))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "openai").write_bytes(b"weights")
    _ = Backends(BackendsConfig(color="open_clip", color_path="openai", device="cpu")).color
    assert [c["pretrained"] for c in calls] == [str(tmp_path / "openai")]
