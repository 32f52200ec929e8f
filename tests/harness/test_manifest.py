"""The manifest's package versions: right, and looked up once per process."""
from __future__ import annotations

import importlib.metadata

from lavida_bench import manifest


def test_versions_match_installed_metadata_and_are_looked_up_once(monkeypatch) -> None:
    manifest._installed_versions.cache_clear()
    calls: list[str] = []
    real = importlib.metadata.version

    def counting(name: str) -> str:
        calls.append(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", counting)
    first = manifest.package_versions()
    assert first["torch"] == real("torch")
    assert set(first) == set(manifest.PACKAGES)
    first["torch"] = "edited by a caller"  # a caller's copy never changes what the next run records
    second = manifest.package_versions()
    assert second["torch"] == real("torch")
    assert calls == list(manifest.PACKAGES)  # the second call read the cache
    manifest._installed_versions.cache_clear()
