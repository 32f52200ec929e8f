"""Typed run configuration: YAML presets + CLI dotlist overrides, validated in one pass.

Every problem (unknown key, wrong type, unknown task/variant name) is collected with its key path
and reported at once in a single `ConfigError`, so a user fixes a config in one round trip.
The schema is a tree of dataclasses used as OmegaConf structured configs.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf

from lavida_bench.backends import BackendsConfig
from lavida_bench.protocol import Options


class ConfigError(ValueError):
    """One or more configuration problems, each with its key path."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class ModelConfig:
    kind: str = "lavida_o"  # model registry name: lavida_o | constant
    checkpoint: Optional[str] = None  # local folder in the release layout (config.json, shards, tokenizer, vqvae/)
    device: str = "auto"  # auto = cuda if available else cpu
    dtype: str = "auto"  # auto = bfloat16 on cuda, float32 on cpu
    attn_implementation: str = "sdpa"  # sdpa | eager
    image_settings: str = "demo_1024"  # sampler preset for generation: demo_1024 | geneval_script
    grounding_frame: str = "pad_square"  # LOC coordinate frame: pad_square | per_axis
    resolution: int = 1024  # default generation/editing side in pixels (a task or variant may override)
    cpu_threads: Optional[int] = None  # torch CPU threads (None = torch's default); 1 suits tiny models


@dataclass
class VariantConfig:
    """Options a variant sets on every request (None = leave the task/model default)."""

    plan: bool = False
    reflect_rounds: int = 1
    steps: Optional[int] = None
    cfg: Optional[float] = None
    temperature: Optional[float] = None
    policy: Optional[str] = None

    def to_options(self) -> Options:
        return Options(plan=self.plan, reflect_rounds=self.reflect_rounds, steps=self.steps,
                       cfg=self.cfg, temperature=self.temperature, policy=self.policy)


@dataclass
class TaskConfig:
    data: Optional[str] = None  # local folder with the benchmark's files
    variants: Optional[List[str]] = None  # None = the task's default variants
    limit: Optional[int] = None  # first N samples only (smoke tests)
    options: Dict[str, Any] = field(default_factory=dict)  # task-specific, validated by the task


def default_variants() -> dict[str, VariantConfig]:
    """The variants every run knows: plain, planning, planning + reflection, grounding steps."""
    return {
        "plain": VariantConfig(),
        "plan": VariantConfig(plan=True),
        "plan_reflect": VariantConfig(plan=True, reflect_rounds=3),
        "steps1": VariantConfig(steps=1),
        "steps4": VariantConfig(steps=4),
    }


@dataclass
class SpeedConfig:
    batch_sizes: List[int] = field(default_factory=lambda: [1, 4])
    repeats: int = 5
    warmup: int = 1
    cases: List[str] = field(default_factory=lambda: ["understand", "ground1", "ground4", "generate", "edit"])
    resolutions: List[int] = field(default_factory=lambda: [1024])
    model_preset: str = "tiny"  # tiny | small | official (random weights, labelled as such)
    # Added by the speed suite (lavida_bench/speed):
    image_steps: int = 64  # official T2I / edit step count (lavida-o-model.md §6.2.2)
    understand_tokens: int = 256  # lmms-eval default max_new_tokens (§6.1)
    input_size: List[int] = field(default_factory=lambda: [640, 480])  # understand/ground input (COCO-like)
    comparisons: List[str] = field(default_factory=lambda: [
        "prefix_cache", "image_only", "image_prompt_cache", "cfg_batching", "ground_vs_ar", "understand_vs_ar", "qwen_ground",
        "harness", "scoring"])
    qwen_preset: str = "tiny"  # tiny | official (random weights) | none; qwen_path wins when given
    qwen_path: Optional[str] = None  # local Qwen2.5-VL-7B-Instruct folder
    qwen_answer_tokens: int = 30  # forced reply length with random weights (estimate of a bbox JSON reply)
    qwen_prompt_tokens: int = 30  # stand-in prompt text length with random weights
    cpu_threads: Optional[int] = None  # torch CPU threads for the run (None = torch's default)
    floor: bool = True  # measure the device's matmul rate and bandwidth and report measured/floor
    harness_samples: int = 4  # samples per task for the runner + record-store overhead measurement


@dataclass
class RunConfig:
    name: str = "run"
    output: str = "runs/latest"
    seed: int = 0
    batch_size: int = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    tasks: Dict[str, TaskConfig] = field(default_factory=dict)
    variants: Dict[str, VariantConfig] = field(default_factory=default_variants)
    backends: BackendsConfig = field(default_factory=BackendsConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)


PRESETS = ("demo", "paper", "speed", "regression")


def preset_text(name: str) -> str:
    return resources.files("lavida_bench.presets").joinpath(f"{name}.yaml").read_text()


def load_config(config: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Preset name or YAML path, then `key=value` overrides; validated before anything runs."""
    if config is None:
        raw, source = {}, "defaults"
    elif str(config) in PRESETS:
        raw, source = OmegaConf.to_container(OmegaConf.create(preset_text(str(config)))), f"preset {config}"
    else:
        path = Path(config)
        if not path.is_file():
            raise ConfigError([f"config file {path} does not exist (or name a preset: {', '.join(PRESETS)})"])
        raw, source = OmegaConf.to_container(OmegaConf.load(path)), str(path)
    if overrides:
        try:
            dot = OmegaConf.from_dotlist(list(overrides))
        except Exception as err:  # omegaconf raises several grammar error types
            raise ConfigError([f"cannot parse overrides {overrides}: {err}"], source) from err
        raw = OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(raw or {}), dot))
    return build_config(raw or {}, source)


def build_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    problems = check_schema(RunConfig, raw, "")
    problems += check_names(raw)
    if problems:
        raise ConfigError(problems, source)
    merged = OmegaConf.merge(OmegaConf.structured(RunConfig), raw)
    return typing.cast(RunConfig, OmegaConf.to_object(merged))


def check_names(raw: dict[str, Any]) -> list[str]:
    """Task names must be registered; variant names must be defined."""
    from lavida_bench.tasks import TASKS

    problems = []
    variants = set(default_variants()) | set((raw.get("variants") or {}).keys())
    for task, tcfg in (raw.get("tasks") or {}).items():
        if task not in TASKS:
            problems.append(f"tasks.{task}: unknown task (available: {', '.join(TASKS.names())})")
        for v in (tcfg or {}).get("variants") or []:
            if v not in variants:
                problems.append(f"tasks.{task}.variants: unknown variant {v!r} (defined: {', '.join(sorted(variants))})")
    return problems


def check_schema(schema: Any, value: Any, path: str) -> list[str]:
    """All mismatches between a raw value and a dataclass/typing schema, with key paths."""
    where = path or "<root>"
    origin, args = typing.get_origin(schema), typing.get_args(schema)
    if schema is Any:
        return []
    if origin is typing.Union:  # Optional[X]
        if value is None and type(None) in args:
            return []
        inner = [a for a in args if a is not type(None)]
        return check_schema(inner[0], value, path)
    if value is None:
        return [f"{where}: null is not allowed (expected {getattr(schema, '__name__', schema)})"]
    if dataclasses.is_dataclass(schema):
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping for {schema.__name__}, got {type(value).__name__}"]
        hints = typing.get_type_hints(schema)
        problems = [f"{path + '.' if path else ''}{k}: unknown key (valid: {', '.join(hints)})"
                    for k in value if k not in hints]
        for k, v in value.items():
            if k in hints:
                problems += check_schema(hints[k], v, f"{path}.{k}" if path else k)
        return problems
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping, got {type(value).__name__}"]
        return [p for k, v in value.items() for p in check_schema(args[1], v, f"{path}.{k}")]
    if origin in (list, List):
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [p for i, v in enumerate(value) for p in check_schema(args[0], v, f"{path}[{i}]")]
    return check_scalar(schema, value, where)


def check_scalar(schema: type, value: Any, where: str) -> list[str]:
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(schema, True)
    return [] if ok else [f"{where}: expected {schema.__name__}, got {type(value).__name__} {value!r}"]


def to_yaml(cfg: RunConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    return typing.cast(dict, OmegaConf.to_container(OmegaConf.structured(cfg)))
