"""Typed run configuration: YAML presets + CLI dotlist overrides, validated in one pass.

Every problem (unknown key, wrong type, unknown task/variant name) is collected with its key path
and reported at once in a single `ConfigError`, so a user fixes a config in one round trip.
The schema is a tree of dataclasses used as OmegaConf structured configs.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from omegaconf import OmegaConf

from lavida_bench.api import ConfigError, Options
from lavida_bench.backends import BackendsConfig, unset_evaluators
from lavida_bench.validate import problems as schema_problems


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
    # text answers: True = decoded against the encoded prompt (the release's evaluations, prefix_lm=True);
    # False = the whole sequence at every step, for weights trained without the prefix-LM mask (the
    # world's micro model; model/text_decoder.py)
    prefix_lm: bool = True
    # manifest fingerprint of the weights: False = size + safetensors header + 16 sampled 64 KiB blocks
    # per file (milliseconds); True = sha256 of every byte (~20 s at 21 GB; README guarantees)
    full_weights_hash: bool = False


@dataclass
class VariantConfig:
    """Options a variant sets on every request (None = leave the task/model default)."""

    plan: bool = False
    reflect_rounds: int = 1
    steps: Optional[int] = None
    cfg: Optional[float] = None
    image_cfg: Optional[float] = None
    temperature: Optional[float] = None
    policy: Optional[str] = None
    grounding_output: Optional[str] = None

    def to_options(self) -> Options:
        return Options(plan=self.plan, reflect_rounds=self.reflect_rounds, steps=self.steps,
                       cfg=self.cfg, image_cfg=self.image_cfg, temperature=self.temperature, policy=self.policy,
                       grounding_output=self.grounding_output)


@dataclass
class TaskConfig:
    data: Optional[str] = None  # local folder with the benchmark's files
    variants: Optional[List[str]] = None  # None = the task's default variants
    limit: Optional[Union[int, float]] = None  # first N samples, or a fraction in (0, 1) (see `sample_count`)
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
    # What one case runs, sized like the official evaluations so measured times are comparable:
    image_steps: int = 64  # official T2I / edit step count (LaVida-O `llava/eval/1024_eval.yaml`)
    understand_tokens: int = 256  # the release's lmms-eval runs' default max_new_tokens (LaVida-O `eval/run.sh`)
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
    limit: Optional[Union[int, float]] = None  # every task: first N samples or a fraction (a task's own limit may cut further)
    model: ModelConfig = field(default_factory=ModelConfig)
    tasks: Dict[str, TaskConfig] = field(default_factory=dict)
    variants: Dict[str, VariantConfig] = field(default_factory=default_variants)
    backends: BackendsConfig = field(default_factory=BackendsConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)


PRESETS = ("demo", "smoke", "paper", "speed", "regression")


def preset_text(name: str) -> str:
    return resources.files("lavida_bench.presets").joinpath(f"{name}.yaml").read_text()


def load_config(config: str | Path | None = None, overrides: list[str] | None = None,
                tasks: list[str] | None = None) -> RunConfig:
    """Preset name or YAML path, then `key=value` overrides, then the `--tasks` selection;
    validated before anything runs."""
    raw, source = read_source(config)
    raw = normalize(merge_overrides(raw, overrides or [], source))
    if tasks is not None:
        raw["tasks"] = select_tasks(raw.get("tasks") or {}, tasks, source)
    return resolve_paths(build_config(raw, source))


def merge_overrides(raw: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """`raw` with `key=value` overrides applied (values are YAML); a malformed one is a ConfigError."""
    if not overrides:
        return raw or {}
    problems = []
    for item in overrides:
        try:
            OmegaConf.from_dotlist([item])
        except Exception as err:  # omegaconf raises several grammar error types
            problems.append(f"override {item!r}: cannot parse ({str(err).splitlines()[0]}); expected key=value")
    if problems:
        raise ConfigError(problems, source)
    merged = OmegaConf.merge(OmegaConf.create(raw or {}), OmegaConf.from_dotlist(list(overrides)))
    return typing.cast(dict, OmegaConf.to_container(merged))


def read_source(config: str | Path | None) -> tuple[dict[str, Any], str]:
    if config is None:
        return {}, "defaults"
    if str(config) in PRESETS:
        return OmegaConf.to_container(OmegaConf.create(preset_text(str(config)))), f"preset {config}"
    path = Path(config)
    if not path.is_file():
        raise ConfigError([f"config file {path} does not exist (or name a preset: {', '.join(PRESETS)})"])
    try:
        return OmegaConf.to_container(OmegaConf.load(path)) or {}, str(path)
    except Exception as err:  # YAML syntax errors come in several types
        raise ConfigError([f"cannot parse YAML: {err}"], str(path)) from err


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Accept a single variant name (`tasks.geneval.variants=plain`) or a comma list where the
    schema wants a list: a dotlist override cannot spell a one-element list otherwise."""
    for tcfg in (raw.get("tasks") or {}).values():
        if isinstance(tcfg, dict) and isinstance(tcfg.get("variants"), str):
            tcfg["variants"] = [v.strip() for v in tcfg["variants"].split(",") if v.strip()]
    return raw


def select_tasks(tasks: dict[str, Any], names: list[str], source: str) -> dict[str, Any]:
    """The `--tasks a,b` subset, in the order given; a registered task the config does not
    list joins with default settings (its data folder then comes from an override)."""
    from lavida_bench.tasks import TASKS

    unknown = [n for n in names if n not in tasks and n not in TASKS]
    if unknown or not names:
        available = ", ".join(dict.fromkeys([*tasks, *TASKS.names()]))
        raise ConfigError([f"--tasks: unknown task(s) {', '.join(unknown) or '(none given)'} "
                           f"(available: {available})"], source)
    return {n: tasks.get(n) or {} for n in dict.fromkeys(names)}


def build_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    problems = schema_problems(RunConfig, raw, "")
    problems += check_names(raw)
    problems += [] if problems else unset_evaluators(raw.get("backends"), (raw.get("tasks") or {}).keys())
    if problems:
        raise ConfigError(problems, source)
    merged = OmegaConf.merge(OmegaConf.structured(RunConfig), raw)
    cfg = typing.cast(RunConfig, OmegaConf.to_object(merged))
    problems = check_values(cfg)
    if problems:
        raise ConfigError(problems, source)
    return cfg


DTYPES = ("auto", "bfloat16", "float16", "float32")
ATTENTION = ("sdpa", "eager")
# model/sampling/grounding.py FRAMES (not imported: that package loads the whole sampler);
# tests/harness/test_config.py checks the two agree.
GROUNDING_FRAMES = ("pad_square", "per_axis")


def check_values(cfg: RunConfig) -> list[str]:
    """Values the types allow but nothing can run: unknown enumeration members, counts below
    one, limits that select nothing. Checked at load, so `validate` and `run` refuse them alike."""
    from lavida_bench.model.prompts import IMAGE_SETTINGS

    m = cfg.model
    problems = [f"model.{key}: {value!r} is not one of {', '.join(choices)}"
                for key, value, choices in (("dtype", m.dtype, DTYPES), ("attn_implementation", m.attn_implementation, ATTENTION),
                                            ("image_settings", m.image_settings, tuple(IMAGE_SETTINGS)),
                                            ("grounding_frame", m.grounding_frame, GROUNDING_FRAMES))
                if value not in choices]
    problems += device_problems(m.device)
    problems += [f"{key}: must be at least 1, got {value}" for key, value in
                 (("batch_size", cfg.batch_size), ("model.resolution", m.resolution), ("model.cpu_threads", m.cpu_threads))
                 if value is not None and value < 1]
    problems += limit_problems("limit", cfg.limit)
    for name, variant in cfg.variants.items():
        try:
            variant.to_options()  # Options checks its own values
        except ValueError as err:
            problems.append(f"variants.{name}.{err}")
    for name, tcfg in cfg.tasks.items():
        problems += limit_problems(f"tasks.{name}.limit", tcfg.limit)
        if tcfg.variants == []:
            problems.append(f"tasks.{name}.variants: empty (leave it out for the task's default variants)")
    return problems


def speed_problems(speed: SpeedConfig) -> list[str]:
    """The speed suite's enumerations and counts (checked by `speed` before it builds anything)."""
    from lavida_bench.speed.qwen import PRESETS as QWEN_PRESETS
    from lavida_bench.speed.random_model import PRESETS as MODEL_PRESETS

    problems = [f"speed.{key}: {value!r} is not one of {', '.join(choices)}"
                for key, value, choices in (("model_preset", speed.model_preset, MODEL_PRESETS),
                                            ("qwen_preset", speed.qwen_preset, (*QWEN_PRESETS, "none")))
                if value not in choices]
    problems += [f"speed.{key}: every value must be at least 1, got {values}" for key, values in
                 (("batch_sizes", speed.batch_sizes), ("resolutions", speed.resolutions),
                  ("repeats", [speed.repeats]), ("image_steps", [speed.image_steps])) if any(v < 1 for v in values)]
    return problems


def device_problems(device: str) -> list[str]:
    import torch

    if device == "auto":
        return []
    try:
        torch.device(device)
    except (RuntimeError, ValueError):
        return [f"model.device: {device!r} is not a device (auto, cpu, cuda, cuda:N)"]
    return []


def limit_problems(key: str, limit: float | None) -> list[str]:
    """lmms-eval's meaning: N >= 1 takes the first N samples, 0 < f < 1 the first ceil(f x total)
    (lmms_eval/evaluator_utils.py, `get_sample_size`); anything else selects nothing sensible."""
    if limit is None or 0 < limit < 1 or (limit >= 1 and float(limit).is_integer()):
        return []
    return [f"{key}: expected a whole number of samples >= 1 or a fraction between 0 and 1, got {limit!r}"]


def sample_count(limit: float | None, total: int) -> int:
    """How many of `total` samples a limit keeps (see `limit_problems`)."""
    if limit is None:
        return total
    return min(total, math.ceil(total * limit) if limit < 1 else int(limit))


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


# Backend settings that name files or folders besides the `*_path` ones.
BACKEND_FILES = ("fid_reference", "judge_cache", "detector_classes", "detector_config")


def resolve_paths(cfg: RunConfig) -> RunConfig:
    """Every path the config names made absolute and resolved, so the manifest still points at
    the right files when `score` or `report` run from another directory."""
    def absolute(path: str | None) -> str | None:
        return None if path is None else str(Path(path).expanduser().resolve())

    cfg.output = absolute(cfg.output) or cfg.output
    cfg.model.checkpoint = absolute(cfg.model.checkpoint)
    cfg.speed.qwen_path = absolute(cfg.speed.qwen_path)
    for tcfg in cfg.tasks.values():
        tcfg.data = absolute(tcfg.data)
    for f in dataclasses.fields(cfg.backends):
        if f.name.endswith("_path") or f.name in BACKEND_FILES:
            setattr(cfg.backends, f.name, absolute(getattr(cfg.backends, f.name)))
    return cfg


def to_yaml(cfg: RunConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """The resolved config as plain dicts and lists (the manifest's `config`). A direct walk of
    the dataclasses: the config was validated when built, and OmegaConf's structured copy took
    60 ms of every run's fixed cost."""
    return typing.cast(dict, plain(cfg))


def plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
