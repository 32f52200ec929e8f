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
    expected = {"detector": None, "detector_path": None, "color": None, "color_path": None,
                "vqa": None, "vqa_path": None, "inception": None, "inception_path": None,
                "fid_reference": None, "judge": None, "judge_url": None, "judge_model": "gpt-4o",
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
    backends = Backends(BackendsConfig.standins())
    assert backends._built == {}
    assert backends.detector is backends.detector
    assert set(backends._built) == {"detector"}


def test_fingerprints_describe_without_loading(tmp_path: Path) -> None:
    weights = tmp_path / "clip"
    weights.mkdir()
    (weights / "config.json").write_bytes(b"{}")
    ref = tmp_path / "ref.npz"
    ref.write_bytes(b"not really an npz")
    cfg = dataclasses.replace(BackendsConfig.standins(), color="clip", color_path=str(weights),
                              fid_reference=str(ref), judge="openai", judge_url="http://127.0.0.1:1/v1")
    fp = Backends(cfg).fingerprints()
    assert set(fp) == set(KINDS)
    assert fp["detector"] == {"name": "standin", "standin": True, "official": False, "official_choice": "mmdet",
                              "note": STANDIN_NOTE}
    assert fp["judge"]["official"] is True
    assert fp["color"]["name"] == "clip" and fp["color"]["standin"] is False
    assert fp["color"]["weights"]["files"]["config.json"]["sha256"] == hashlib.sha256(b"{}").hexdigest()
    assert fp["inception"]["fid_reference"]["sha256"] == hashlib.sha256(b"not really an npz").hexdigest()
    assert fp["judge"]["model"] == "gpt-4o" and fp["judge"]["api_key_env"] == "OPENAI_API_KEY"
    assert fp["judge"]["url"] == "http://127.0.0.1:1/v1"


def test_fingerprints_read_weight_files_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run asks for the fingerprints for its manifest, every task's score records and the
    score pass: the weight folders and the FID reference are read once, not each time."""
    import lavida_bench.backends as backends_module

    weights = tmp_path / "clip"
    weights.mkdir()
    (weights / "config.json").write_bytes(b"{}")
    read: list[str] = []
    real = backends_module.path_fingerprint
    monkeypatch.setattr(backends_module, "path_fingerprint", lambda p: read.append(str(p)) or real(p))
    backends = Backends(dataclasses.replace(BackendsConfig.standins(), color="clip", color_path=str(weights)))
    first = backends.fingerprints()
    backends.evaluator_fingerprint(["color"])
    assert backends.fingerprints() == first
    assert read == [str(weights)]


def test_config_problems_fail_before_anything_is_built(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backends.judge_url is not set"):
        Backends(BackendsConfig(judge="openai"))
    with pytest.raises(ValueError, match="must start with http"):
        Backends(BackendsConfig(judge="openai", judge_url="127.0.0.1:8000"))
    with pytest.raises(ValueError, match="inception_mode='legacy_pytorch'"):
        Backends(BackendsConfig(inception="clean_fid", inception_path=str(tmp_path),
                                inception_mode="legacy_pytorch"))


def test_standin_kinds_are_listed_for_reports() -> None:
    cfg = dataclasses.replace(BackendsConfig.standins(), judge="openai", judge_url="http://127.0.0.1:1/v1")
    assert Backends(cfg).standin_kinds() == ["detector", "color", "vqa", "inception"]


def test_config_problems_are_gathered(tmp_path: Path) -> None:
    cfg = BackendsConfig(detector="yolo", vqa="blip", judge="openai")
    problems = config_problems(cfg)
    assert len(problems) == 3
    assert "backends.detector='yolo'" in problems[0]
    assert "backends.vqa_path is not set" in problems[1]
    assert "backends.judge_url is not set" in problems[2]
    assert config_problems(BackendsConfig()) == []


def test_an_unset_backend_is_never_built_and_says_the_official_choice() -> None:
    backends = Backends(BackendsConfig())
    assert backends.fingerprints() == {} and backends.standin_kinds() == []
    with pytest.raises(ValueError, match="backends.judge is not set; the official choice is backends.judge=openai"):
        backends.judge


def test_a_config_whose_tasks_need_an_unset_backend_is_refused() -> None:
    from lavida_bench.api import ConfigError
    from lavida_bench.config import load_config

    with pytest.raises(ConfigError) as err:
        load_config(None, ["tasks.geneval.data=/d", "tasks.mmmu.data=/m", "backends.color=standin"])
    message = str(err.value)
    assert "backends.color" not in message and "mmmu" not in message
    assert "backends.detector: not set, and geneval need(s) it; the official choice is backends.detector=mmdet" in message
    load_config(None, ["tasks.mmmu.data=/m"])  # a task without evaluators needs no backends
    load_config(None, ["tasks.geneval.data=/d", "backends.detector=standin", "backends.color=standin"])


def test_evaluator_fingerprint_follows_what_is_computed_not_where(tmp_path: Path) -> None:
    standin = Backends(BackendsConfig.standins())
    other = Backends(dataclasses.replace(BackendsConfig.standins(), judge_timeout_s=5.0, judge_cache="/x"))
    assert standin.evaluator_fingerprint(["judge"]) == other.evaluator_fingerprint(["judge"])
    openai = Backends(dataclasses.replace(BackendsConfig.standins(), judge="openai", judge_url="http://127.0.0.1:1/v1"))
    assert openai.evaluator_fingerprint(["judge"]) != standin.evaluator_fingerprint(["judge"])
    assert openai.evaluator_fingerprint(["detector"]) == standin.evaluator_fingerprint(["detector"])
