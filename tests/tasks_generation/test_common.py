"""Shared plumbing of the generation tasks: option validation, per-image ids, request options."""
from __future__ import annotations

import pytest

from lavida_bench.api import DataError, Options, Sample, Variant
from lavida_bench.tasks import TASKS
from lavida_bench.tasks.generation import image_samples
from lavida_bench.validate import parse_options

NAMES = ("geneval", "dpg_bench", "fid30k", "imgedit")


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_is_named(name):
    with pytest.raises(DataError, match=rf"tasks\.{name}\.options\.bogus: unknown key \(valid: "):
        TASKS.get(name)(None, {"bogus": 1})


def test_wrong_type_and_choice_are_reported_together():
    from lavida_bench.tasks.dpg_bench import DpgOptions

    with pytest.raises(DataError) as err:
        parse_options(DpgOptions, {"protocol": "quad", "resolution": "big"}, "dpg_bench")
    text = str(err.value)
    assert "tasks.dpg_bench.options.protocol: expected 'single' | 'grid', got 'quad'" in text
    assert "tasks.dpg_bench.options.resolution: expected int, got str 'big'" in text


def test_range_check_becomes_data_error():
    with pytest.raises(DataError, match="images_per_prompt' must be >= 1"):
        TASKS.get("geneval")(None, {"images_per_prompt": 0})


def test_bool_is_not_an_int():
    with pytest.raises(DataError, match="images_per_prompt"):
        TASKS.get("geneval")(None, {"images_per_prompt": True})


def test_one_sample_per_image_index():
    samples = image_samples("00007", {"index": 7}, 3)
    assert [s.id for s in samples] == ["00007/0", "00007/1", "00007/2"]
    assert [s.data["image_index"] for s in samples] == [0, 1, 2]
    assert all(s.data["index"] == 7 for s in samples)


@pytest.mark.parametrize("name", NAMES)
def test_variant_options_pass_through_with_resolution(name, tmp_path):
    cls = TASKS.get(name)
    task = cls(cls.make_fixture(tmp_path / name), {"resolution": 512})
    sample = task.load()[0]
    req = task.request(sample, Variant("plan_reflect", Options(plan=True, reflect_rounds=3, steps=16)))
    assert req.id == sample.id
    assert req.capability == cls.capability
    assert req.options == Options(plan=True, reflect_rounds=3, steps=16, resolution=512)


@pytest.mark.parametrize("name", NAMES)
def test_task_identity(name):
    cls = TASKS.get(name)
    assert cls.name == name
    assert cls.capability == ("edit" if name == "imgedit" else "generate")
    assert cls.variants == ("plain", "plan", "plan_reflect")


@pytest.mark.parametrize("name,count", [("geneval", 6), ("dpg_bench", 3), ("fid30k", 6), ("imgedit", 4)])
def test_fixtures_load(name, count, tmp_path):
    cls = TASKS.get(name)
    root = cls.make_fixture(tmp_path / name, seed=0)
    samples = cls(root).load()
    assert len(samples) == count
    assert len({s.id for s in samples}) == count
    assert all(isinstance(s, Sample) for s in samples)


@pytest.mark.parametrize("name", NAMES)
def test_missing_data_folder_is_data_error(name, tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "absent")):
        TASKS.get(name)(tmp_path / "absent").load()
