"""Helpers every real backend shares: local paths only, optional packages imported lazily.

Why a module of its own: the "nothing ever downloads" rule and the wording of the errors should
live in one place, not be re-typed by each backend.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType


def require_path(value: str | None, key: str, what: str) -> Path:
    """Return `value` as an existing local path, made absolute, or raise FileNotFoundError naming
    the config key (`backends.<key>`) and what the user should put there. Absolute because some
    libraries read a bare name as something to fetch before trying it as a path: open_clip looks
    `pretrained="openai"` up as a download tag first (factory.py `create_model`)."""
    if not value:
        raise FileNotFoundError(f"backends.{key} is not set: put {what} there "
                                f"(e.g. backends.{key}=/weights/...). Nothing is downloaded.")
    path = Path(value).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"backends.{key}={value} does not exist: put {what} there. "
                                f"Nothing is downloaded.")
    return path.absolute()


def optional_import(module: str, backend: str, install: str) -> ModuleType:
    """Import an optional dependency, or raise ImportError saying which backend needs it and how
    to install it (the official environments pin versions the project cannot install for you)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"backend {backend!r} needs the package {module!r}, which is not "
                          f"importable here ({err}). Install it with: {install}") from err


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu' (one rule for model and backends)."""
    from lavida_bench.model.devices import resolve_device as resolve

    return resolve(name)
