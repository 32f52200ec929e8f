"""One training run of the micro world model, from a seed to a checkpoint in the release layout.

Stages: the tokenizer's merges are learned from the world's texts; the VQ is trained on world
images; the network's vision side is pretrained to name the objects in each feature cell (the
stand-in for the release's pretrained SigLIP, `vision_pretrain.py`); the network is trained with
the masked-diffusion objective on the task mix. The run folder gets `checkpoint/` (the final
weights, release layout), `early/` (the same command's weights at `early_step`, the
under-trained model for regression demos), `loss.jsonl` (one line per step) and `train.json`
(the command's settings, seed, timings, final losses and the fingerprints of the weights).
"""
from __future__ import annotations

import json
import math
import shlex
import shutil
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lavida_bench.model.checkpoint import load_checkpoint, save_checkpoint
from lavida_bench.model.config import LavidaConfig
from lavida_bench.model.network import LavidaNetwork
from lavida_bench.model.tiny import tiny_tokenizer
from lavida_bench.model.tokens import SpecialIds
from lavida_bench.model.vq import VQTokenizer, vq_from_config
from lavida_bench.world.micro import WORLD_SIDE, init_micro_weights, micro_config, micro_vq_config
from lavida_bench.world.losslog import LossLog, StageLog
from lavida_bench.world.mix import MIX, TUNE_MIX, Example, corpus, example, mix_text, parse_mix, trained_as
from lavida_bench.world.snapshot import SNAPSHOT_EVERY, Progress, optimizer_tensors, restore_optimizer
from lavida_bench.world.trainer import IMAGE_TASKS, WorldTrainer, check_image_options, sample_task
from lavida_bench.world.vision_pretrain import TARGETS, VISION_PREFIXES, pretrain_vision
from lavida_bench.world.vqtrain import initial_vq, train_vq


@dataclass(frozen=True)
class RunSettings:
    seed: int = 0
    vq_steps: int = 5000
    vision_steps: int = 1000
    steps: int = 9000
    early_step: int = 600
    text_batch: int = 16
    image_batch: int = 8
    lr: float = 2e-3
    warmup: int = 50
    padding_from: int = 300
    object_weight: float = 1.0  # 1 = the release's loss (world/trainer.py)
    object_masks: float = 0.0  # 0 = the release's masks (world/trainer.py)
    # The vision side's learning rate as a share of `lr`, and AdamW's weight decay. The shipped
    # weights used 1.0 and 0.01; the release trains its tower at a fifth of the LLM's rate with no
    # weight decay (docs/benchmarks.md, "The vision features forget which object a cell holds").
    vision_lr_scale: float = 1.0
    weight_decay: float = 0.01
    # What vision pretraining aims the features at (`vision_pretrain.TARGETS`): "classes" for the
    # shipped weights; "words" puts each cell in the space of the words naming its object;
    # "places" adds a code of where the cell is.
    vision_target: str = "classes"
    # The first network stage's task shares, `task=share,...` (`mix.parse_mix`); the default is
    # `mix.MIX`, the shipped weights'.
    mix: str = mix_text(MIX)
    # Stages between the first and the tuning stage, each `mix@steps` (`parse_phases`), at `lr`
    # with their own warm-up and cosine: a skill learned alone before the full mix
    # (docs/benchmarks.md, "Ground first, then colour alone"). "" (no phases) is the default.
    phases: str = ""
    # The tuning stage (0 steps: none), its peak learning rate (warm-up and cosine as the first's)
    # and its task shares (`mix.TUNE_MIX` by default; the shipped weights' own are in their train.json)
    tune_steps: int = 0
    tune_lr: float = 1e-4
    tune_mix: str = mix_text(TUNE_MIX)
    threads: int = 1

    def __post_init__(self) -> None:
        if self.vision_steps < 0:
            raise ValueError(f"vision_steps must be >= 0, got {self.vision_steps}")
        for name in ("vq_steps", "steps", "text_batch", "image_batch", "padding_from", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_image_options(self.object_weight, self.object_masks)
        parse_mix(self.mix)
        parse_phases(self.phases)
        parse_mix(self.tune_mix)
        if self.vision_target not in TARGETS:
            raise ValueError(f"vision_target must be one of {', '.join(TARGETS)}, got {self.vision_target!r}")
        for name in ("vision_lr_scale", "weight_decay", "tune_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0 or self.tune_lr <= 0:
            raise ValueError(f"lr and tune_lr must be > 0, got {self.lr} and {self.tune_lr}")
        if not 0 < self.early_step < self.steps:
            raise ValueError(f"early_step must be between 0 and steps ({self.steps}), got {self.early_step}")

    def cli_args(self) -> list[str]:
        """The `tools/train_world.py` options that reproduce these settings."""
        return [f"--{name.replace('_', '-')} {shlex.quote(str(value))}" for name, value in asdict(self).items()]


@dataclass(frozen=True)
class Stage:
    """One network-training stage: its mix, length, peak learning rate and warm-up, and the seed of
    its examples (its masks draw from `seed + 1`); `before` steps of earlier stages precede it."""

    name: str
    mix: dict[str, float]
    steps: int
    lr: float
    warmup: int
    seed: int
    before: int = 0


def parse_phases(text: str) -> list[tuple[dict[str, float], int]]:
    """The `phases` setting: space-separated `mix@steps` entries (`mix.parse_mix`, steps >= 1)."""
    out = []
    for entry in text.split():
        mix, sep, steps = entry.rpartition("@")
        if not sep or not steps.isdigit() or int(steps) < 1:
            raise ValueError(f"phase {entry!r}: expected task=share,...@steps with steps >= 1")
        out.append((parse_mix(mix), int(steps)))
    return out


def stages(settings: RunSettings) -> list[Stage]:
    """The world's own phrasing first; then the `phases`; then, with `tune_steps`, the benchmarks'
    phrasings too. Each stage's examples and masks draw from seeds of their own."""
    out = [Stage("network", parse_mix(settings.mix), settings.steps, settings.lr, settings.warmup, settings.seed + 2)]
    for i, (mix, steps) in enumerate(parse_phases(settings.phases), start=1):
        out.append(Stage(f"phase{i}", mix, steps, settings.lr, settings.warmup, settings.seed + 5 + 2 * i,
                         before=out[-1].before + out[-1].steps))
    if settings.tune_steps:
        out.append(Stage("tune", parse_mix(settings.tune_mix), settings.tune_steps, settings.tune_lr, settings.warmup,
                         settings.seed + 5, before=out[-1].before + out[-1].steps))
    return out


def later_stages(settings: RunSettings, continued: bool) -> list[Stage]:
    """The network stages after the first that a run trains: all of them, or a continued run's
    tuning stage alone (its base run trained the phases)."""
    return [s for s in stages(settings)[1:] if s.name == "tune" or not continued]


def total_steps(settings: RunSettings) -> int:
    """Network steps over every stage: what the final weights have been trained for."""
    last = stages(settings)[-1]
    return last.before + last.steps


def learning_rate(stage: Stage, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step <= stage.warmup:
        return stage.lr * step / stage.warmup
    progress = (step - stage.warmup) / max(1, stage.steps - stage.warmup)
    return stage.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def padding_targets(settings: RunSettings, step: int) -> bool:
    """Whether text answers' EOS padding is a target at `step`. Before `padding_from` it is not:
    a network trained from scratch on 16 answer slots, 14 of them EOS, learns "EOS everywhere"
    and never the answer slot's content; trained on the content first, it keeps it when the
    padding joins (docs/benchmarks.md, "The answer padding"). The release trains on the padding
    from the start (LaVida-O `llava_llada.py:189`): its network is a pretrained LLM."""
    return step >= settings.padding_from


def build_network(settings: RunSettings, tokenizer, config: LavidaConfig | None = None) -> LavidaNetwork:
    """The micro network (or `config`, a variant of it) with seeded initial weights."""
    network = LavidaNetwork(config or micro_config(len(tokenizer)))
    init_micro_weights(network, settings.seed)
    return network


def optimizer(net: LavidaNetwork, settings: RunSettings) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters: the vision side (tower, resampler, projector) in its
    own group, whose learning rate is `vision_lr_scale` times the others' (`training_step`)."""
    vision, rest = [], []
    for name, p in net.named_parameters():
        if p.requires_grad:
            (vision if name.startswith(VISION_PREFIXES) else rest).append(p)
    groups = [{"params": rest, "lr_scale": 1.0}, {"params": vision, "lr_scale": settings.vision_lr_scale}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=settings.lr, betas=(0.9, 0.98),
                             weight_decay=settings.weight_decay)


def training_step(opt: torch.optim.Optimizer, trainer: WorldTrainer, batch: list[Example], gen: torch.Generator,
                  lr: float, padding: bool = True) -> torch.Tensor:
    """One update on `batch` at learning rate `lr` (gradients clipped to norm 1); returns the loss.
    `padding`: whether text answers' EOS padding is a target (`padding_targets`)."""
    for group in opt.param_groups:
        group["lr"] = lr * group["lr_scale"]
    loss = trainer.loss(batch, gen, padding)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainer.net.parameters(), 1.0)
    opt.step()
    return loss.detach()


def train_stage(settings: RunSettings, stage: Stage, trainer: WorldTrainer, out: Path, log: LossLog,
                progress: Progress) -> None:
    """Run `stage` with a fresh optimizer, or go on from its snapshot; the first stage keeps its
    `early_step` weights."""
    from tqdm import tqdm

    if progress.finished(stage.name):
        return
    progress.begin()
    rng = np.random.default_rng(stage.seed)
    gen = torch.Generator().manual_seed(stage.seed + 1)
    net = trainer.net.train()
    opt = optimizer(net, settings)
    start = progress.start_step(stage.name)
    if start:
        states = progress.states()
        restore_optimizer(opt, states)
        gen.set_state(states["generator"])
        rng.bit_generator.state = progress.snapshot.numpy_rng
    bar = tqdm(range(start + 1, stage.steps + 1), desc=stage.name, unit="step", initial=start, total=stage.steps)
    for step in bar:
        task = sample_task(rng, stage.mix)
        size = settings.image_batch if trained_as(task) in IMAGE_TASKS else settings.text_batch
        batch = [example(rng, task, WORLD_SIDE, trainer.n_pos) for _ in range(size)]
        lr = learning_rate(stage, step)
        loss = training_step(opt, trainer, batch, gen, lr, padding_targets(settings, stage.before + step))
        log.write(stage.name, step, {"task": task, "loss": round(float(loss), 4), "lr": round(lr, 6)})
        bar.set_postfix(log.means(), refresh=False)
        if stage.before == 0 and step == settings.early_step:
            save(net, trainer.vq, trainer.tokenizer, out / "early", provenance(settings, step))
        if step == stage.steps:  # the next stage starts its own optimizer and streams
            progress.save(stage.name, step, True, log.lines, log.seconds(), {"network": net.state_dict()})
        elif step % SNAPSHOT_EVERY == 0:
            progress.save(stage.name, step, False, log.lines, log.seconds(), {"network": net.state_dict()},
                          {**optimizer_tensors(opt), "generator": gen.get_state()}, rng.bit_generator.state)
    net.eval()


WORLD = "synthetic world"  # the provenance mark the trust facts read (lavida_bench/trust.py)


def provenance(settings: RunSettings, step: int) -> dict[str, Any]:
    return {"weights": "trained", "world": WORLD, "trained_steps": step, "seed": settings.seed,
            "command": "python tools/train_world.py --out RUN_FOLDER " + " ".join(settings.cli_args())}


def save(net: LavidaNetwork, vq: VQTokenizer, tokenizer, folder: Path, facts: dict[str, Any]) -> None:
    was_training = net.training
    save_checkpoint(folder, net.eval(), vq, tokenizer, facts)
    net.train(was_training)


def file_digest(path: Path) -> str | None:
    """sha256 of a file, None where there is none."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def weights_fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every safetensors file of a checkpoint folder (relative path -> digest)."""
    return {str(p.relative_to(folder)): file_digest(p) for p in sorted(folder.rglob("*.safetensors"))}


def train_world(settings: RunSettings, out: str | Path, command: str = "",
                continue_from: str | Path | None = None, resume: bool = False,
                vq_from: str | Path | None = None) -> dict[str, Any]:
    """Run every stage into `out` (which must not hold a previous run); returns train.json's content.
    `continue_from`: a finished run of these settings without tuning (`check_base`); its weights
    stand for the first stages, and only the tuning stage runs. `vq_from`: a finished run of the
    same seed and VQ steps (`check_vq_source`); its VQ stands for the VQ stage, which depends on
    nothing else, so recipes of the network stages are compared without retraining it. `resume`:
    go on from the last snapshot of a killed run in `out` (`world/snapshot.py`), started with
    these settings and sources; the weights are those of the uninterrupted run, and train.json
    records the original command."""
    out = Path(out)
    base_path = None if continue_from is None else str(continue_from)
    vq_path = None if vq_from is None else str(vq_from)
    if base_path is not None and vq_path is not None:
        raise ValueError("continue_from and vq_from exclude each other: a continued run trains no VQ")
    progress = (Progress.resume(out, asdict(settings), base_path, vq_path, asdict(RunSettings())) if resume
                else fresh_progress(settings, out, base_path, command, vq_path))
    base = check_base(settings, Path(base_path)) if base_path is not None else None
    vq_source = check_vq_source(settings, Path(vq_path)) if vq_path is not None else None
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    log = LossLog(out / "loss.jsonl", progress.snapshot.log_lines, progress.snapshot.seconds)
    if base is None:
        trainer = base_trainer(settings, log, progress)
        train_stage(settings, stages(settings)[0], trainer, out, log, progress)
    else:
        trainer = continued_trainer(settings, Path(base_path), out, progress)
    first_seconds = log.seconds()
    for stage in later_stages(settings, base is not None):
        train_stage(settings, stage, trainer, out, log, progress)
    save(trainer.net, trainer.vq, trainer.tokenizer, out / "checkpoint", provenance(settings, total_steps(settings)))
    seconds = {"first_stages" if base is None else "loading": round(first_seconds, 1), "total": round(log.seconds(), 1)}
    record = {"command": progress.snapshot.command, "settings": asdict(settings), "world_side": WORLD_SIDE,
              "seconds": seconds, "final_losses": log.means(),
              "fingerprint": {"checkpoint": weights_fingerprint(out / "checkpoint"),
                              "early": weights_fingerprint(out / "early")}}
    if progress.snapshot.resumed_at:
        record["resumed_at"] = progress.snapshot.resumed_at
    if base is not None:
        record["continued_from"] = {k: base[k] for k in ("command", "seconds", "final_losses", "fingerprint")}
    if vq_source is not None:
        record["vq_from"] = {"run": vq_path, "command": vq_source.get("command"),
                             "fingerprint": {VQ_FILE: vq_source["fingerprint"]["checkpoint"][VQ_FILE]}}
    log.close()
    (out / "train.json").write_text(json.dumps(record, indent=2))
    progress.remove()
    return record


def fresh_progress(settings: RunSettings, out: Path, base_path: str | None, command: str,
                   vq_path: str | None = None) -> Progress:
    """A new run's progress: nothing done yet. `out` must not hold a run."""
    if (out / "train.json").exists() or (out / "loss.jsonl").exists():
        raise FileExistsError(f"{out}: already holds a training run (train.json / loss.jsonl); choose a new folder, "
                              f"or resume a killed run")
    first = [] if base_path else ["vq", "vision", stages(settings)[0].name]
    units = first + [s.name for s in later_stages(settings, base_path is not None)]
    return Progress.fresh(out, asdict(settings), base_path, command, units, vq_path)


def world_tokenizer(settings: RunSettings):
    """The tokenizer with merges learned from the world's texts (the seed's own corpus)."""
    return tiny_tokenizer(corpus(np.random.default_rng(settings.seed + 1), WORLD_SIDE))


def snapshot_vq(progress: Progress) -> VQTokenizer:
    vq = VQTokenizer(vq_from_config(micro_vq_config()).eval())
    vq.model.load_state_dict(progress.tensors("vq"))
    return vq


def base_trainer(settings: RunSettings, log: LossLog, progress: Progress) -> WorldTrainer:
    """Tokenizer, VQ and vision pretraining from the seed, each from the snapshot when it has them
    (the VQ from the `vq_from` run when there is one)."""
    tokenizer = world_tokenizer(settings)
    if progress.finished("vq"):
        vq = snapshot_vq(progress)
    elif progress.snapshot.vq_from is not None:
        lent = load_checkpoint(Path(progress.snapshot.vq_from) / "checkpoint").vq.model.state_dict()
        vq = VQTokenizer(initial_vq(settings.seed).eval())  # leaves the global generator as training it does
        vq.model.load_state_dict(lent)
        progress.save("vq", settings.vq_steps, True, log.lines, log.seconds(), {"vq": vq.model.state_dict()})
    else:
        with StageLog(log, "vq", settings.vq_steps) as vq_log:
            vq = train_vq(settings.seed, settings.vq_steps, log=vq_log)
        progress.save("vq", settings.vq_steps, True, log.lines, log.seconds(), {"vq": vq.model.state_dict()})
    vq.model.requires_grad_(False)
    if not progress.finished("vision"):
        progress.begin()
    network = build_network(settings, tokenizer)
    if progress.finished("vision"):
        network.load_state_dict(progress.tensors("network"))
    else:
        with StageLog(log, "vision", settings.vision_steps) as vision_log:
            pretrain_vision(network, settings.vision_steps, settings.seed + 4, vision_log, settings.vision_target,
                            tokenizer)
        progress.save("vision", settings.vision_steps, True, log.lines, log.seconds(), {"network": network.state_dict()})
    return WorldTrainer(network, vq, tokenizer, SpecialIds.from_tokenizer(tokenizer), settings.object_weight,
                        settings.object_masks)


def continued_trainer(settings: RunSettings, base: Path, out: Path, progress: Progress) -> WorldTrainer:
    """The trainer over a finished run's final weights (or the snapshot's); its `early/` is copied
    as this run's."""
    ck = load_checkpoint(base / "checkpoint")
    ck.network.requires_grad_(True)  # the loader hands out frozen weights, for inference
    ck.vq.model.requires_grad_(False)
    snapshot = progress.tensors("network")
    if snapshot is not None:
        ck.network.load_state_dict(snapshot)
    shutil.copytree(base / "early", out / "early", dirs_exist_ok=True)
    return WorldTrainer(ck.network, ck.vq, ck.tokenizer, ck.ids, settings.object_weight, settings.object_masks)


def export_snapshot(run: str | Path, dest: str | Path) -> Path:
    """The latest snapshot of a run in progress as a checkpoint folder in the release layout, to
    evaluate a run before it ends. Its provenance names the steps trained so far."""
    run = Path(run)
    progress = Progress.read(run)
    snap = progress.snapshot
    if "network" not in snap.files:
        raise ValueError(f"{run / 'resume'}: the snapshot is from before the network exists ({snap.unit})")
    weights = progress.tensors("network")  # first: a snapshot written meanwhile deletes the earlier files
    settings = RunSettings(**snap.settings)
    if snap.continue_from is None:
        tokenizer, vq = world_tokenizer(settings), snapshot_vq(progress)
    else:
        base = load_checkpoint(Path(snap.continue_from) / "checkpoint")
        tokenizer, vq = base.tokenizer, base.vq
    network = LavidaNetwork(micro_config(len(tokenizer)))
    network.load_state_dict(weights)
    stage = next((s for s in stages(settings) if s.name == snap.unit), None)
    steps = 0 if stage is None else stage.before + snap.step
    save(network, vq, tokenizer, Path(dest), {**provenance(settings, steps), "snapshot_of": str(run)})
    return Path(dest)


TUNING = ("tune_steps", "tune_lr", "tune_mix")  # the settings a continued run may add to its base's
VQ_STAGE = ("seed", "vq_steps")  # the settings the VQ stage depends on
VQ_FILE = "vqvae/diffusion_pytorch_model.safetensors"


def run_record(run: Path, option: str) -> dict[str, Any]:
    """A finished run's train.json, checked to be a record of this version. `option` names the
    option that asked for it, for the error."""
    path = run / "train.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no train.json; {option} needs a finished training run's folder")
    record = json.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in ("settings", "fingerprint") if k not in record]
    unknown = sorted(set(record.get("settings", {})) - {f.name for f in fields(RunSettings)})
    if missing or unknown:
        raise ValueError(f"{path}: not a training record of this version (missing {missing}, unknown settings "
                         f"{unknown})")
    return record


def check_vq_source(settings: RunSettings, run: Path) -> dict[str, Any]:
    """The `vq_from` run's train.json, after checking that its VQ stage is this run's: the same
    seed and VQ steps, and its tokenizer's recorded fingerprint. (Its VQ weights may differ from a
    retrained one's in the last bits where the thread counts differ.)"""
    record = run_record(run, "vq_from")
    recorded = RunSettings(**record["settings"])
    differ = [k for k in VQ_STAGE if getattr(recorded, k) != getattr(settings, k)]
    if differ:
        raise ValueError(f"{run / 'train.json'}: settings {differ} differ from this run's; the VQ stage depends on "
                         f"{list(VQ_STAGE)} only, and they must match")
    if file_digest(run / "checkpoint" / VQ_FILE) != record["fingerprint"]["checkpoint"].get(VQ_FILE):
        raise ValueError(f"{run / 'checkpoint' / VQ_FILE}: weights differ from the fingerprint in {run / 'train.json'}")
    return record


def check_base(settings: RunSettings, base: Path) -> dict[str, Any]:
    """The base run's train.json, after checking that it finished the same first stages: every
    setting but the tuning ones equal, no tuning of its own, and its weights' recorded fingerprint."""
    if not settings.tune_steps:
        raise ValueError("continuing a run needs tune_steps > 0 (the stage that runs)")
    record = run_record(base, "continue_from")
    path = base / "train.json"
    recorded = RunSettings(**record["settings"])  # settings newer than the run default to what it ran with
    if recorded.tune_steps:
        raise ValueError(f"{path}: the base run already tuned ({recorded.tune_steps} steps)")
    if replace(recorded, **{k: getattr(settings, k) for k in TUNING}) != settings:
        differ = [f.name for f in fields(RunSettings) if f.name not in TUNING
                  and getattr(recorded, f.name) != getattr(settings, f.name)]
        raise ValueError(f"{path}: settings {differ} differ from the base run's; only {list(TUNING)} may")
    for folder in ("checkpoint", "early"):
        if weights_fingerprint(base / folder) != record["fingerprint"][folder]:
            raise ValueError(f"{base / folder}: weights differ from the fingerprint in {path}")
    return record
