"""The manifest's provenance: package versions and the git revision, right and cheap."""
from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
from pathlib import Path

import pytest

from lavida_bench import manifest


def installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_versions_match_installed_metadata_and_are_looked_up_once(monkeypatch) -> None:
    expected = {name: installed(name) for name in manifest.PACKAGES}  # importlib.metadata's answer
    manifest._installed_versions.cache_clear()
    listings: list[str] = []
    real_listdir = manifest.os.listdir

    def counting(path: str) -> list[str]:
        listings.append(path)
        return real_listdir(path)

    monkeypatch.setattr(manifest.os, "listdir", counting)
    first = manifest.package_versions()
    assert first == expected
    assert first["torch"] is not None
    first["torch"] = "edited by a caller"  # a caller's copy never changes what the next run records
    done = len(listings)
    second = manifest.package_versions()
    assert second["torch"] == expected["torch"]
    assert len(listings) == done  # the second call read the cache
    manifest._installed_versions.cache_clear()


@pytest.mark.parametrize("name, normal", [("clean-fid", "clean-fid"), ("Clean_FID", "clean-fid"),
                                          ("lmms.eval", "lmms-eval"), ("Pillow", "pillow")])
def test_distribution_names_are_compared_in_their_normal_form(name: str, normal: str) -> None:
    assert manifest._normalized(name) == normal


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_checkout_revision_names_the_commit_and_any_change(tmp_path: Path) -> None:
    assert manifest.checkout_revision(tmp_path) is None  # not a checkout
    git(tmp_path, "init", "-q")
    assert manifest.checkout_revision(tmp_path) is None  # no commit yet
    (tmp_path / "a.py").write_text("x = 1\n")
    git(tmp_path, "add", "a.py")
    git(tmp_path, "commit", "-q", "-m", "a")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert manifest.checkout_revision(tmp_path) == head
    (tmp_path / "new.py").write_text("")  # untracked code changes what runs
    assert manifest.checkout_revision(tmp_path) == head + "+dirty"
    (tmp_path / "new.py").unlink()
    (tmp_path / "a.py").write_text("x = 2\n")
    assert manifest.checkout_revision(tmp_path) == head + "+dirty"
