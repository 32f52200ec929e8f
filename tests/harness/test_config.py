import pytest

from lavida_bench.cli import main
from lavida_bench.config import PRESETS, ConfigError, RunConfig, load_config


@pytest.mark.parametrize("preset", PRESETS)
def test_every_shipped_preset_validates(preset):
    cfg = load_config(preset)
    assert isinstance(cfg, RunConfig)
    assert cfg.name == preset


def test_all_problems_are_reported_at_once_with_key_paths(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "seed: three\n"
        "modle: {}\n"
        "model: {kind: lavida_o, dtyp: bf16}\n"
        "tasks:\n"
        "  geneval: {limit: many, variants: [plain, nosuch]}\n"
        "  notatask: {}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    text = str(info.value)
    for expected in ["seed: expected int", "modle: unknown key", "model.dtyp: unknown key",
                     "tasks.geneval.limit: expected int", "unknown variant 'nosuch'",
                     "tasks.notatask: unknown task"]:
        assert expected in text, (expected, text)
    assert len(info.value.problems) == 6


def test_cli_overrides_are_typed_and_checked():
    cfg = load_config("demo", ["batch_size=7", "tasks.mmmu.limit=3"])
    assert cfg.batch_size == 7 and cfg.tasks["mmmu"].limit == 3
    with pytest.raises(ConfigError, match="batch_size: expected int"):
        load_config("demo", ["batch_size=lots"])


def test_validate_names_missing_checkpoint_key_and_path(tmp_path, capsys):
    missing = tmp_path / "no-such-checkpoint"
    code = main(["validate", "--config", "paper", f"model.checkpoint={missing}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "model.checkpoint" in err and str(missing) in err
