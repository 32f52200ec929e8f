"""Docs, docstrings and comments cite public primary sources (the paper, official repositories),
never private notes a user of the repository does not have (issue 16, Docs)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml"}
SKIPPED_DIRS = {".venv", ".git", "__pycache__", "build", "dist"}
# Notes kept outside the repository; `docs/benchmarks.md` is the repository's own page and is allowed.
PRIVATE = re.compile(r"lavida-o-model\.md|\bstyle\.md|dependencies\.md|shared/reference|benchmarks\.md\s*§")


def repository_texts() -> list[Path]:
    return [path for path in ROOT.rglob("*")
            if path.suffix in SUFFIXES and path.is_file() and path.resolve() != Path(__file__).resolve()
            and not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in path.relative_to(ROOT).parts)]


def test_no_citation_of_private_notes():
    hits = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            for path in repository_texts()
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
            if PRIVATE.search(line)]
    assert not hits, "cite the paper or the official repository instead:\n" + "\n".join(hits)


def test_pattern_catches_a_private_citation():
    assert PRIVATE.search("(lavida-o-model.md §6.2)") and PRIVATE.search("(benchmarks.md §1.3)")
    assert not PRIVATE.search("docs/ holds benchmarks.md (measured speed figures)")
