"""The run manifest: everything needed to know what produced a run folder.

Resolved config, package versions, git revision, device, seeds, and fingerprints of every weight
and data file used, plus each task's version. Resuming into a folder whose manifest says the
outputs came from different settings is refused, listing what differs.
"""
from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from lavida_bench import __version__
from lavida_bench.api import StoreError
from lavida_bench.safety import redact
from lavida_bench.store import read_json, write_json

PACKAGES = ("torch", "torchvision", "transformers", "diffusers", "safetensors", "omegaconf",
            "pandas", "numpy", "pillow", "pycocotools", "torchmetrics", "clean-fid", "lmms-eval")
# Config keys that may change between a run and its resume without changing any output.
RESUME_FREE_KEYS = ("output", "batch_size", "name")


@functools.cache
def _installed_versions() -> tuple[tuple[str, str | None], ...]:
    """Looked up once per process (the demo and the speed suite run many evaluations in one), from
    one listing of each import path's `NAME-VERSION.dist-info` folders (the installed-wheel
    layout, PEP 427 / PEP 376): 0.5 ms where 13 `importlib.metadata` lookups take about 6 ms.
    A package found no other way (an egg install) falls back to `importlib.metadata`."""
    listed: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and "-" in name:
                dist, version = name[: -len(".dist-info")].rsplit("-", 1)
                listed.setdefault(_normalized(dist), version)  # first on sys.path wins, as for imports
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = listed.get(_normalized(name)) or importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return tuple(out.items())


def _normalized(name: str) -> str:
    """A distribution name in PEP 503's normal form: `Clean_FID` and `clean-fid` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that shape a run's outputs (None where one is not installed)."""
    return dict(_installed_versions())


def checkout_revision(folder: Path) -> str | None:
    """`folder`'s git commit, with "+dirty" when the checkout has changes or untracked files; None
    outside a git checkout. One `git status` call answers both (porcelain v2's `branch.oid`)."""
    try:
        status = subprocess.run(["git", "status", "--porcelain=v2", "--branch"], cwd=folder,
                                capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = status.stdout.splitlines()
    oid = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), None)
    if status.returncode != 0 or oid is None or oid == "(initial)":
        return None
    return oid + ("+dirty" if any(not line.startswith("#") for line in lines) else "")


@functools.cache
def git_revision() -> str | None:
    """Revision of the lavida-bench source tree, when it runs from a git checkout. Looked up once
    per process: the code a process runs is the code it imported, whatever is committed later."""
    return checkout_revision(Path(__file__).resolve().parent)


def device_info(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"device": device, "platform": platform.platform(),
                            "python": sys.version.split()[0], "cpu_threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        idx = torch.device(device).index or 0
        info["gpu"] = torch.cuda.get_device_name(idx)
        info["cuda"] = torch.version.cuda
    return info


def build_manifest(config: dict[str, Any], *, model: dict[str, Any], tasks: list[dict[str, Any]],
                   backends: dict[str, Any], device: str, world_size: int) -> dict[str, Any]:
    return {
        "lavida_bench": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "config": config,
        "seed": config.get("seed"),
        "versions": package_versions(),
        "git": git_revision(),
        "device": device_info(device),
        "world_size": world_size,
        "model": model,
        "tasks": tasks,
        "backends": backends,
    }


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Key paths whose values differ between two resolved configs (resume-free keys ignored)."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in RESUME_FREE_KEYS:
            continue
        a, b = old.get(key), new.get(key)
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, path + ".")
        elif a != b:
            diffs.append(f"{path}: {a!r} -> {b!r}")
    return diffs


def without_limits(config: dict[str, Any]) -> dict[str, Any]:
    """The config with every sample limit taken out: a limit decides how many samples run, not
    what a finished sample's output is."""
    tasks = {n: {k: v for k, v in (t or {}).items() if k != "limit"} for n, t in (config.get("tasks") or {}).items()}
    return {**{k: v for k, v in config.items() if k != "limit"}, "tasks": tasks}


def resume_differences(old: dict[str, Any], new: dict[str, Any], *, with_model: bool = True) -> list[str]:
    """Why a run folder made under manifest `old` cannot be continued under `new`. Raising a
    limit only adds samples and is allowed; lowering one would leave finished samples out."""
    diffs = config_differences(without_limits(old.get("config", {})), without_limits(new["config"]))
    if with_model:
        # the model entry holds the weights' fingerprints: name the file and hash that changed
        stored_model = json.loads(json.dumps(new.get("model") or {}, default=str))
        diffs += config_differences(old.get("model") or {}, stored_model, "model.")
    old_tasks = {t["name"]: t for t in old.get("tasks", [])}
    for task in new.get("tasks", []):
        before = old_tasks.get(task["name"], {})
        if {k: v for k, v in before.items() if k != "samples"} != {k: v for k, v in task.items() if k != "samples"}:
            diffs.append(f"tasks: {task['name']}: fingerprints or versions differ")
        elif task.get("samples", 0) < before.get("samples", 0):
            diffs.append(f"tasks.{task['name']}.limit: {before['samples']} -> {task['samples']} samples "
                         "(a limit may only be raised on an existing run)")
    return diffs


def check_resume(path: Path, manifest: dict[str, Any], *, with_model: bool = True) -> dict[str, Any] | None:
    """The folder's manifest when it can be continued under `manifest` (None for a new folder);
    raises `StoreError` listing every difference otherwise."""
    if not path.exists():
        return None
    old = read_json(path)
    # the stored manifest was redacted when written: compare like with like, so a secret inside a
    # config value does not block every resume, and no difference listed can show a secret
    diffs = resume_differences(old, redact(manifest), with_model=with_model)
    if diffs:
        raise StoreError(redact(f"{path}: this run folder was made with different settings; "
                                "use a new --output or restore them:\n  " + "\n  ".join(diffs)))
    return old


def write_or_check_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """First run: write. Resume: refuse if the settings differ, else keep the original manifest
    (with the possibly raised limits and sample counts) and append this invocation to its
    `resumes` list."""
    old = check_resume(path, manifest)
    if old is None:
        write_json(path, manifest)
        return
    old["config"]["limit"] = manifest["config"].get("limit")
    for name, tcfg in manifest["config"].get("tasks", {}).items():
        old["config"]["tasks"][name]["limit"] = tcfg.get("limit")
    old["tasks"] = manifest["tasks"]
    old.setdefault("resumes", []).append({"created": manifest["created"], "command": manifest["command"],
                                          "world_size": manifest["world_size"]})
    write_json(path, old)
