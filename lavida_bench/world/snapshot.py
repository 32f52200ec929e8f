"""Snapshots of a training run in progress: a run killed at any point resumes from its last
snapshot and ends with the weights an uninterrupted run writes, byte for byte.

A run's work is a list of units: the VQ stage, vision pretraining, then each network stage (a
run continued from a finished one has only its tuning stage). A snapshot marks a position (a unit
and its last finished step) and holds what the rest of the run needs from before it: the VQ
weights, the network's latest weights, a network stage's optimizer and random streams, the global
torch generator, and how many lines of `loss.jsonl` it covers. It lives in `<run>/resume/`: the
tensors go to files named by position, then `state.json`, replaced atomically, names them, so a
kill while writing leaves the previous snapshot whole (every file is fsynced before its rename,
`store.write_atomic`, so a crash of the machine does too). Network stages write one every
`SNAPSHOT_EVERY` steps and at their end; the VQ and vision stages only at their end, so a kill
inside them repeats that stage (at most the VQ stage's 22 minutes on this project's 2-core
machine). A finished run deletes the folder.

Every tensor, weights, optimizer moments and generator states alike, is stored as safetensors
(no pickle); the rest is JSON.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from lavida_bench.store import write_atomic

SNAPSHOT_EVERY = 200  # network steps between snapshots (2-3 min on the 2-core machine of 2026-12-06)
STATE = "state.json"


@dataclass
class Snapshot:
    """What `state.json` records: the run's identity (settings, base run, command, the run whose VQ
    it took), its position (the last finished `step` of `unit`), and the files that hold the rest."""

    settings: dict[str, Any]
    continue_from: str | None
    command: str
    units: list[str]
    unit: str = ""
    step: int = 0
    done: bool = False  # the unit is finished
    log_lines: int = 0
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)  # role (vq, network, states) -> file name
    numpy_rng: dict[str, Any] | None = None  # the network stage's example stream
    resumed_at: list[dict[str, Any]] = field(default_factory=list)
    vq_from: str | None = None


class Progress:
    """Where a run stands, read from and written to its `resume/` folder. A fresh run starts at
    nothing done; a resumed one at its snapshot."""

    def __init__(self, run: Path, snapshot: Snapshot):
        self.folder = run / "resume"
        self.snapshot = snapshot
        self.rng_pending = bool(snapshot.unit)  # the global generator still to restore

    @classmethod
    def fresh(cls, run: Path, settings: dict[str, Any], continue_from: str | None, command: str,
              units: list[str], vq_from: str | None = None) -> "Progress":
        return cls(run, Snapshot(settings, continue_from, command, units, vq_from=vq_from))

    @classmethod
    def read(cls, run: Path) -> "Progress":
        """The run's last snapshot."""
        path = run / "resume" / STATE
        if not path.is_file():
            why = "it has finished (train.json)" if (run / "train.json").exists() else "no snapshot was written"
            raise FileNotFoundError(f"{path}: nothing to resume ({why})")
        try:
            return cls(run, Snapshot(**json.loads(path.read_text(encoding="utf-8"))))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a snapshot of this version ({err})") from None

    @classmethod
    def resume(cls, run: Path, settings: dict[str, Any], continue_from: str | None,
               vq_from: str | None = None, defaults: dict[str, Any] | None = None) -> "Progress":
        """The run's last snapshot, after checking that it was taken with these settings, base run
        and VQ source. A setting newer than the snapshot counts as `defaults`' value (what the
        run ran with)."""
        progress = cls.read(run)
        snapshot, path = progress.snapshot, run / "resume" / STATE
        recorded = {**(defaults or {}), **snapshot.settings}
        differ = sorted(k for k in settings if recorded.get(k) != settings[k])
        if differ or (snapshot.continue_from, snapshot.vq_from) != (continue_from, vq_from):
            raise ValueError(f"{path}: the run was started with other settings ({differ}), base run "
                             f"({snapshot.continue_from!r}) or VQ source ({snapshot.vq_from!r}); resume it with "
                             f"the options it was started with")
        snapshot.resumed_at.append({"unit": snapshot.unit, "step": snapshot.step})
        return progress

    def finished(self, unit: str) -> bool:
        s = self.snapshot
        if not s.unit:
            return False
        return s.units.index(unit) < s.units.index(s.unit) or (unit == s.unit and s.done)

    def start_step(self, unit: str) -> int:
        """The steps of `unit` already behind the run (0 when it has not begun)."""
        return self.snapshot.step if unit == self.snapshot.unit and not self.finished(unit) else 0

    def begin(self) -> None:
        """Called where the run starts computing again: put the global torch generator where the
        snapshot left it (once; it draws the vision head's initial weights, for one)."""
        if self.rng_pending:
            torch.set_rng_state(self.states()["torch_rng"])
            self.rng_pending = False

    def tensors(self, role: str) -> dict[str, torch.Tensor] | None:
        name = self.snapshot.files.get(role)
        return load_file(self.folder / name) if name else None

    def states(self) -> dict[str, torch.Tensor]:
        """The generators' states ("torch_rng", "generator") and the optimizer's per-parameter
        state ("optimizer.{index}.{name}")."""
        return load_file(self.folder / self.snapshot.files["states"])

    def save(self, unit: str, step: int, done: bool, log_lines: int, seconds: float,
             tensors: dict[str, dict[str, torch.Tensor]], states: dict[str, torch.Tensor] | None = None,
             numpy_rng: dict[str, Any] | None = None) -> None:
        """Write `tensors` (role -> state dict) and `states` (`Progress.states`) with the global
        generator's, then point `state.json` at them and at the earlier files it still needs;
        delete the rest."""
        self.folder.mkdir(parents=True, exist_ok=True)
        s = self.snapshot
        s.unit, s.step, s.done, s.log_lines, s.seconds, s.numpy_rng = unit, step, done, log_lines, seconds, numpy_rng
        tag = f"{unit}-{step}"
        for role, sd in tensors.items():
            s.files[role] = f"{role}-{tag}.safetensors"
            write_atomic(self.folder / s.files[role], save({k: v.contiguous() for k, v in sd.items()}))
        s.files["states"] = f"states-{tag}.safetensors"
        write_atomic(self.folder / s.files["states"], save({**(states or {}), "torch_rng": torch.get_rng_state()}))
        write_atomic(self.folder / STATE, json.dumps(asdict(s), indent=1).encode())
        for path in self.folder.iterdir():
            if path.name not in (STATE, *s.files.values()):
                path.unlink()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state as flat tensors (its hyperparameters are the run's
    settings, so a resumed run's fresh optimizer already has them)."""
    return {f"optimizer.{index}.{name}": value for index, state in opt.state_dict()["state"].items()
            for name, value in state.items()}


def restore_optimizer(opt: torch.optim.Optimizer, states: dict[str, torch.Tensor]) -> None:
    """Put `optimizer_tensors`' entries of `states` back into `opt`."""
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in states.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".")
            per_param.setdefault(int(index), {})[name] = value
    opt.load_state_dict({"state": per_param, "param_groups": opt.state_dict()["param_groups"]})
