"""Registries: base-class and name checks, and no test leaking a registration into another."""
from __future__ import annotations

import pytest

from lavida_bench.registry import Registry
from lavida_bench.tasks import TASKS
from lavida_bench.tasks.base import Task

BUILTIN_TASKS = ["chartqa", "dpg_bench", "fid30k", "geneval", "imgedit", "mmmu", "refcoco"]


class Base:
    name = "good"


class Good(Base):
    pass


class Other:
    name = "good"


def test_register_refuses_an_object_of_the_wrong_base_class():
    registry: Registry[type[Base]] = Registry("widget", base=Base)
    registry.register("good", Good)
    with pytest.raises(TypeError, match=r"widget 'other': .*Other.* is not a subclass of Base"):
        registry.register("other", Other)
    with pytest.raises(TypeError, match="not a subclass of Base"):
        registry.register("instance", Good())  # an instance is not a class
    assert registry.names() == ["good"]


def test_a_lazy_entry_is_checked_when_loaded():
    registry: Registry[type[Base]] = Registry("widget", {"other": f"{__name__}:Other"}, base=Base)
    with pytest.raises(TypeError, match="not a subclass of Base"):
        registry.get("other")


def test_a_name_is_stated_one_way():
    registry: Registry[type[Base]] = Registry("widget", base=Base)
    with pytest.raises(ValueError, match=r"widget 'bad': Good is named 'good'"):
        registry.register("bad", Good)


def test_task_names_come_from_their_modules_and_match_the_registry():
    assert TASKS.names() == BUILTIN_TASKS  # also: no earlier test left a fake registered
    for name in TASKS.names():
        assert TASKS.get(name).name == name


def test_registrations_inside_restored_are_undone():
    class Extra(Task):
        name = "extra"

    with TASKS.restored():
        TASKS.register("extra", Extra)
        assert "extra" in TASKS
    assert "extra" not in TASKS and TASKS.names() == BUILTIN_TASKS
