import pytest

from lavida_bench.api import ConfigError
from lavida_bench.cli import main
from lavida_bench.config import PRESETS, RunConfig, load_config


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


@pytest.mark.parametrize("preset", PRESETS)
def test_shipped_presets_name_known_tasks_variants_and_backends(preset: str) -> None:
    from lavida_bench.backends import KINDS, backend_class
    from lavida_bench.models import MODELS
    from lavida_bench.tasks import TASKS

    cfg = load_config(preset)
    assert cfg.model.kind in MODELS
    for name, task in cfg.tasks.items():
        assert name in TASKS
        assert set(task.variants or ()) <= set(cfg.variants), (name, task.variants)
    for kind in KINDS:
        if getattr(cfg.backends, kind):  # unset is allowed only when no task needs it (a config error)
            backend_class(kind, getattr(cfg.backends, kind))  # raises on an unknown name


def test_paper_preset_runs_every_benchmark_in_every_variant() -> None:
    cfg = load_config("paper")
    generation = ("geneval", "dpg_bench", "fid30k", "imgedit")
    assert set(cfg.tasks) == {*generation, "refcoco", "mmmu", "chartqa"}
    for name in generation:
        assert list(cfg.tasks[name].variants) == ["plain", "plan", "plan_reflect"]
    assert list(cfg.tasks["refcoco"].variants) == ["steps1", "steps4"]


def test_enumerations_checked_at_load_match_the_model_code():
    from lavida_bench.config import ATTENTION, DTYPES, GROUNDING_FRAMES
    from lavida_bench.model.sampling.grounding import FRAMES

    assert GROUNDING_FRAMES == FRAMES
    assert set(DTYPES) == {"auto", "bfloat16", "float16", "float32"}
    assert set(ATTENTION) == {"sdpa", "eager"}
