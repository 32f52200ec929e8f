"""Model registry: config `model.kind` -> a ready model implementing the capability protocol."""
from __future__ import annotations

from pathlib import Path

from lavida_bench.api import ConfigError, Model
from lavida_bench.config import ModelConfig
from lavida_bench.model.devices import resolve_device  # noqa: F401 - re-exported for the CLI
from lavida_bench.registry import Registry

MODELS: Registry = Registry("model", {
    "lavida_o": "lavida_bench.model.pipeline:LavidaPipeline",
    "constant": "lavida_bench.baselines:ConstantModel",
})
NEEDS_CHECKPOINT = {"lavida_o"}


def check_model_paths(cfg: ModelConfig) -> list[str]:
    """Problems with the paths a model config names (for `validate`, before anything loads)."""
    if cfg.kind not in MODELS:
        return [f"model.kind: unknown model {cfg.kind!r} (available: {', '.join(MODELS.names())})"]
    if cfg.kind not in NEEDS_CHECKPOINT:
        return []
    if cfg.checkpoint is None:
        return ["model.checkpoint: required for model.kind=lavida_o (a local folder in the release layout)"]
    path = Path(cfg.checkpoint)
    if not path.is_dir():
        return [f"model.checkpoint: folder {path} does not exist; download the release "
                "(config.json, model-*.safetensors + index, tokenizer files, vqvae/) into it"]
    if not (path / "config.json").is_file():
        return [f"model.checkpoint: {path / 'config.json'} is missing (expected the release's config.json)"]
    return []


def build_model(cfg: ModelConfig) -> Model:
    problems = check_model_paths(cfg)
    if problems:
        raise ConfigError(problems)
    cls = MODELS.get(cfg.kind)
    if cfg.kind in NEEDS_CHECKPOINT:
        return cls.from_config(cfg)
    return cls()
