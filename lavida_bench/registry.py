"""A small, loud name -> object registry with lazy "module:attr" entries.

An unknown name raises with close matches and the full list; registering a second, different
object under a taken name raises; a lazy entry whose import fails raises with the real cause.
A registry made with a `base` class refuses anything that is not a subclass of it (at
`register`, and for a lazy entry when it is first loaded), and an object that carries a `name`
must carry the name it is registered under, so a name is never stated two different ways.
"""
from __future__ import annotations

import contextlib
import difflib
import importlib
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, entries: dict[str, T | str] | None = None, base: type | None = None):
        self.kind = kind
        self.base = base
        self._entries: dict[str, T | str] = dict(entries or {})

    def register(self, name: str, obj: T | str) -> None:
        if name in self._entries and self._entries[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if not isinstance(obj, str):
            self._check(name, obj)
        self._entries[name] = obj

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.names())}")
        entry = self._entries[name]
        if isinstance(entry, str):
            module_name, _, attr = entry.partition(":")
            module = importlib.import_module(module_name)  # import errors propagate with their cause
            entry = getattr(module, attr)
            self._check(name, entry)
            self._entries[name] = entry
        return entry

    def _check(self, name: str, obj: object) -> None:
        if self.base is not None and not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise TypeError(f"{self.kind} {name!r}: {obj!r} is not a subclass of {self.base.__name__}")
        own = getattr(obj, "name", name) if self.base is not None else name
        if isinstance(own, str) and own != name:
            raise ValueError(f"{self.kind} {name!r}: {getattr(obj, '__name__', obj)} is named {own!r}")

    @contextlib.contextmanager
    def restored(self) -> Iterator["Registry[T]"]:
        """Within the block, registrations are allowed; on leaving it the registry is as before
        (tests register fakes this way without leaking them into other tests)."""
        saved = dict(self._entries)
        try:
            yield self
        finally:
            self._entries.clear()
            self._entries.update(saved)
