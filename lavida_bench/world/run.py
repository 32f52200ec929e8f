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
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lavida_bench.model.checkpoint import save_checkpoint
from lavida_bench.model.config import LavidaConfig
from lavida_bench.model.network import LavidaNetwork
from lavida_bench.model.tiny import tiny_tokenizer
from lavida_bench.model.tokens import SpecialIds
from lavida_bench.model.vq import VQTokenizer
from lavida_bench.world.micro import WORLD_SIDE, init_micro_weights, micro_config
from lavida_bench.world.mix import MIX, Example, corpus, example
from lavida_bench.world.trainer import WorldTrainer, check_image_options, sample_task
from lavida_bench.world.vision_pretrain import VISION_PREFIXES, pretrain_vision
from lavida_bench.world.vqtrain import train_vq


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
    threads: int = 1

    def __post_init__(self) -> None:
        if self.vision_steps < 0:
            raise ValueError(f"vision_steps must be >= 0, got {self.vision_steps}")
        for name in ("vq_steps", "steps", "text_batch", "image_batch", "padding_from", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_image_options(self.object_weight, self.object_masks)
        for name in ("vision_lr_scale", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.early_step < self.steps:
            raise ValueError(f"early_step must be between 0 and steps ({self.steps}), got {self.early_step}")

    def cli_args(self) -> list[str]:
        """The `tools/train_world.py` options that reproduce these settings."""
        return [f"--{name.replace('_', '-')} {value}" for name, value in asdict(self).items()]


def learning_rate(settings: RunSettings, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step <= settings.warmup:
        return settings.lr * step / settings.warmup
    progress = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
    return settings.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


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


class LossLog:
    """`loss.jsonl`, one flushed line per step, and the running means the progress bar shows."""

    def __init__(self, path: Path):
        self.file = open(path, "a", encoding="utf-8")
        self.recent: dict[str, list[float]] = {}
        self.start = time.monotonic()

    def write(self, stage: str, step: int, values: dict[str, Any]) -> None:
        record = {"stage": stage, "step": step, "seconds": round(time.monotonic() - self.start, 1), **values}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if "task" in values:
            self.recent.setdefault(values["task"], []).append(values["loss"])
            self.recent[values["task"]] = self.recent[values["task"]][-50:]

    def means(self) -> dict[str, float]:
        return {task: round(float(np.mean(v)), 3) for task, v in sorted(self.recent.items())}

    def close(self) -> None:
        self.file.close()


class StageLog:
    """A stage's step callback: each step's values go to `loss.jsonl` and to a progress bar."""

    def __init__(self, log: LossLog, stage: str, steps: int):
        from tqdm import tqdm

        self.log, self.stage = log, stage
        self.bar = tqdm(total=steps, desc=stage, unit="step")

    def __call__(self, step: int, values: dict[str, float]) -> None:
        self.log.write(self.stage, step, {k: round(v, 5) for k, v in values.items()})
        self.bar.update(1)
        self.bar.set_postfix(values, refresh=False)

    def __enter__(self) -> "StageLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def optimizer(net: LavidaNetwork, lr: float, vision_lr_scale: float = 1.0,
              weight_decay: float = 0.01) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters: the vision side (tower, resampler, projector) in its
    own group, whose learning rate is `vision_lr_scale` times the others' (`training_step`)."""
    vision, rest = [], []
    for name, p in net.named_parameters():
        if p.requires_grad:
            (vision if name.startswith(VISION_PREFIXES) else rest).append(p)
    groups = [{"params": rest, "lr_scale": 1.0}, {"params": vision, "lr_scale": vision_lr_scale}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)


def training_step(opt: torch.optim.Optimizer, trainer: WorldTrainer, batch: list[Example], gen: torch.Generator,
                  lr: float, padding: bool = True) -> torch.Tensor:
    """One update on `batch` at learning rate `lr` (gradients clipped to norm 1); returns the loss.
    `padding`: whether text answers' EOS padding is a target (`padding_targets`)."""
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    loss = trainer.loss(batch, gen, padding)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainer.net.parameters(), 1.0)
    opt.step()
    return loss.detach()


def train_network(settings: RunSettings, trainer: WorldTrainer, out: Path, log: LossLog) -> None:
    from tqdm import tqdm

    rng = np.random.default_rng(settings.seed + 2)
    gen = torch.Generator().manual_seed(settings.seed + 3)
    net = trainer.net.train()
    opt = optimizer(net, settings.lr, settings.vision_lr_scale, settings.weight_decay)
    bar = tqdm(range(1, settings.steps + 1), desc="network", unit="step")
    for step in bar:
        task = sample_task(rng, MIX)
        size = settings.image_batch if task in ("t2i", "edit") else settings.text_batch
        batch = [example(rng, task, WORLD_SIDE, trainer.n_pos) for _ in range(size)]
        loss = training_step(opt, trainer, batch, gen, learning_rate(settings, step), padding_targets(settings, step))
        log.write("network", step, {"task": task, "loss": round(float(loss), 4),
                                    "lr": round(learning_rate(settings, step), 6)})
        bar.set_postfix(log.means(), refresh=False)
        if step == settings.early_step:
            save(net, trainer.vq, trainer.tokenizer, out / "early", provenance(settings, step))
    net.eval()


WORLD = "synthetic world"  # the provenance mark the trust facts read (lavida_bench/trust.py)


def provenance(settings: RunSettings, step: int) -> dict[str, Any]:
    return {"weights": "trained", "world": WORLD, "trained_steps": step, "seed": settings.seed,
            "command": "python tools/train_world.py --out RUN_FOLDER " + " ".join(settings.cli_args())}


def save(net: LavidaNetwork, vq: VQTokenizer, tokenizer, folder: Path, facts: dict[str, Any]) -> None:
    was_training = net.training
    save_checkpoint(folder, net.eval(), vq, tokenizer, facts)
    net.train(was_training)


def weights_fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every safetensors file of a checkpoint folder (relative path -> digest)."""
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.safetensors"))}


def train_world(settings: RunSettings, out: str | Path, command: str = "") -> dict[str, Any]:
    """Run every stage into `out` (which must not hold a previous run); returns train.json's content."""
    out = Path(out)
    if (out / "train.json").exists() or (out / "loss.jsonl").exists():
        raise FileExistsError(f"{out}: already holds a training run (train.json / loss.jsonl); choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    log = LossLog(out / "loss.jsonl")
    started = time.monotonic()
    tokenizer = tiny_tokenizer(corpus(np.random.default_rng(settings.seed + 1), WORLD_SIDE))
    with StageLog(log, "vq", settings.vq_steps) as vq_log:
        vq = train_vq(settings.seed, settings.vq_steps, log=vq_log)
    vq.model.requires_grad_(False)
    vq_seconds = time.monotonic() - started
    network = build_network(settings, tokenizer)
    with StageLog(log, "vision", settings.vision_steps) as vision_log:
        pretrain_vision(network, settings.vision_steps, settings.seed + 4, vision_log)
    trainer = WorldTrainer(network, vq, tokenizer, SpecialIds.from_tokenizer(tokenizer), settings.object_weight,
                           settings.object_masks)
    train_network(settings, trainer, out, log)
    save(network, vq, tokenizer, out / "checkpoint", provenance(settings, settings.steps))
    record = {"command": command, "settings": asdict(settings), "world_side": WORLD_SIDE,
              "seconds": {"vq": round(vq_seconds, 1), "total": round(time.monotonic() - started, 1)},
              "final_losses": log.means(),
              "fingerprint": {"checkpoint": weights_fingerprint(out / "checkpoint"),
                              "early": weights_fingerprint(out / "early")}}
    log.close()
    (out / "train.json").write_text(json.dumps(record, indent=2))
    return record
