"""Backends: name validation, path checks, lazy building and manifest fingerprints."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from lavida_bench.backends import (
    BACKENDS,
    KINDS,
    STANDIN_NOTE,
    Backends,
    BackendsConfig,
    config_problems,
)


def test_placeholder_fields_and_defaults_are_kept() -> None:
    cfg = BackendsConfig()
    expected = {"detector": "standin", "detector_path": None, "color": "standin", "color_path": None,
                "vqa": "standin", "vqa_path": None, "inception": "standin", "inception_path": None,
                "fid_reference": None, "judge": "standin", "judge_url": None, "judge_model": "gpt-4o",
                "judge_api_key_env": "OPENAI_API_KEY", "judge_cache": None, "judge_timeout_s": 60.0,
                "judge_max_retries": 4}
    assert {k: getattr(cfg, k) for k in expected} == expected
    assert all(f.default is not dataclasses.MISSING for f in dataclasses.fields(BackendsConfig))


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ValueError) as err:
        Backends(BackendsConfig(detector="yolo"))
    message = str(err.value)
    assert "backends.detector='yolo'" in message
    assert "mask2former" in message and "mmdet" in message and "standin" in message


@pytest.mark.parametrize("kind, name, key", [
    ("detector", "mask2former", "detector_path"), ("detector", "mmdet", "detector_path"),
    ("color", "clip", "color_path"), ("color", "open_clip", "color_path"),
    ("vqa", "blip", "vqa_path"), ("vqa", "mplug", "vqa_path"),
    ("inception", "clean_fid", "inception_path"), ("inception", "torchmetrics", "inception_path"),
])
def test_missing_weights_fail_up_front_naming_the_key(kind: str, name: str, key: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"backends.{key} is not set: put "):
        Backends(BackendsConfig(**{kind: name}))
    with pytest.raises(FileNotFoundError, match=f"backends.{key}=.*nope does not exist"):
        Backends(BackendsConfig(**{kind: name, key: str(tmp_path / "nope")}))


def test_every_registered_backend_declares_itself() -> None:
    for kind in KINDS:
        for name in BACKENDS[kind].names():
            cls = BACKENDS[kind].get(name)
            assert cls.name == name
            assert cls.standin is (name == "standin")


def test_backends_are_built_once_and_lazily() -> None:
    backends = Backends(BackendsConfig())
    assert backends._built == {}
    assert backends.detector is backends.detector
    assert set(backends._built) == {"detector"}


def test_fingerprints_describe_without_loading(tmp_path: Path) -> None:
    weights = tmp_path / "clip"
    weights.mkdir()
    (weights / "config.json").write_bytes(b"{}")
    ref = tmp_path / "ref.npz"
    ref.write_bytes(b"not really an npz")
    cfg = BackendsConfig(color="clip", color_path=str(weights), fid_reference=str(ref),
                         judge="openai", judge_url="http://127.0.0.1:1/v1")
    fp = Backends(cfg).fingerprints()
    assert set(fp) == set(KINDS)
    assert fp["detector"] == {"name": "standin", "standin": True, "note": STANDIN_NOTE}
    assert fp["color"]["name"] == "clip" and fp["color"]["standin"] is False
    assert fp["color"]["weights"]["files"]["config.json"]["sha256"] == hashlib.sha256(b"{}").hexdigest()
    assert fp["inception"]["fid_reference"]["sha256"] == hashlib.sha256(b"not really an npz").hexdigest()
    assert fp["judge"]["model"] == "gpt-4o" and fp["judge"]["api_key_env"] == "OPENAI_API_KEY"
    assert fp["judge"]["url"] == "http://127.0.0.1:1/v1"


def test_config_problems_fail_before_anything_is_built(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backends.judge_url is not set"):
        Backends(BackendsConfig(judge="openai"))
    with pytest.raises(ValueError, match="must start with http"):
        Backends(BackendsConfig(judge="openai", judge_url="127.0.0.1:8000"))
    with pytest.raises(ValueError, match="inception_mode='legacy_pytorch'"):
        Backends(BackendsConfig(inception="clean_fid", inception_path=str(tmp_path),
                                inception_mode="legacy_pytorch"))


def test_standin_kinds_are_listed_for_reports() -> None:
    cfg = BackendsConfig(judge="openai", judge_url="http://127.0.0.1:1/v1")
    assert Backends(cfg).standin_kinds() == ["detector", "color", "vqa", "inception"]


def test_config_problems_are_gathered(tmp_path: Path) -> None:
    cfg = BackendsConfig(detector="yolo", vqa="blip", judge="openai")
    problems = config_problems(cfg)
    assert len(problems) == 3
    assert "backends.detector='yolo'" in problems[0]
    assert "backends.vqa_path is not set" in problems[1]
    assert "backends.judge_url is not set" in problems[2]
    assert config_problems(BackendsConfig()) == []
