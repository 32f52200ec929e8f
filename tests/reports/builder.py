"""Run folders built by hand for the report tests: manifest, output and score records, images,
metrics.json (aggregated with lavida_bench.stats, the functions the tasks use, each metric with
its task's declared facts, and the run's trust facts from lavida_bench.trust) and speed rows.

Aggregators here are written out per benchmark so the expected numbers in the tests can be
checked by hand; they mirror the shapes of the real tasks' metrics (plain means, per-group
means, a macro overall, a non-decomposable FID).
"""
from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from lavida_bench.api import Metric, MetricSpec
from lavida_bench.backends import OFFICIAL
from lavida_bench.model.config import LavidaConfig
from lavida_bench.scoring import METRICS_FORMAT
from lavida_bench.stats import macro_metric, mean_metric
from lavida_bench.tasks import TASKS
from lavida_bench.trust import trust_facts

DEFAULT_SPEC = MetricSpec("*", "higher", "0-1", "mean")  # tasks the registry does not know

Aggregator = Callable[[list[Mapping[str, Any]]], dict[str, Metric]]
CAPABILITY = {"geneval": "generate", "dpg_bench": "generate", "fid30k": "generate", "imgedit": "edit",
              "refcoco": "ground", "mmmu": "understand", "chartqa": "understand"}


def by_group(scores: list[Mapping[str, Any]], field: str, value: str) -> dict[str, list[float]]:
    groups: dict[str, list[float]] = {}
    for s in scores:
        groups.setdefault(s[field], []).append(s[value])
    return groups


def agg_geneval(scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
    groups = by_group(scores, "tag", "correct")
    return {**{t: mean_metric(v) for t, v in groups.items()}, "overall": macro_metric(groups)}


def agg_split(field: str) -> Aggregator:
    def agg(scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
        out = {"acc": mean_metric([s["correct"] for s in scores])}
        out |= {f"acc/{g}": mean_metric(v) for g, v in by_group(scores, field, "correct").items()}
        return out
    return agg


def agg_dpg(scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
    out = {"overall": mean_metric([100 * s["score"] for s in scores])}
    out |= {f"L1/{c}": mean_metric([100 * x for x in v]) for c, v in by_group(scores, "category", "score").items()}
    return out


def agg_imgedit(scores: list[Mapping[str, Any]]) -> dict[str, Metric]:
    groups = by_group(scores, "edit_type", "score")
    return {**{t: mean_metric(v) for t, v in groups.items()}, "overall": macro_metric(groups)}


def agg_fid(fid: tuple[float, float, float]) -> Aggregator:
    """FID is a statistic of the whole feature set: the test fixes its value and CI."""
    return lambda scores: {"fid": Metric(fid[0], fid[1], fid[2], len(scores))}


AGGREGATORS: dict[str, Aggregator] = {"geneval": agg_geneval, "dpg_bench": agg_dpg, "imgedit": agg_imgedit,
                                      "refcoco": agg_split("split"), "mmmu": agg_split("discipline"),
                                      "chartqa": agg_split("split"), "fid30k": agg_fid((12.5, 11.0, 14.0))}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def base_manifest(tasks: list[str], variants: dict[str, list[str]], seed: int = 0) -> dict[str, Any]:
    return {
        "lavida_bench": "0.1.0", "created": "2025-01-01T00:00:00+00:00", "command": ["lavida-bench", "run"],
        "seed": seed, "world_size": 1, "git": "abc123",
        "versions": {"torch": "2.14.1"},
        "device": {"device": "cpu", "platform": "test"},
        "model": {"name": "lavida_o", "weights": {"sha256": f"w{seed}"}, "config": LavidaConfig.official().summary()},
        "backends": {kind: {"name": name, "standin": False, "official": True, "official_choice": name,
                            "sha256": f"{kind}1", "path": f"/w/{seed}/{kind}"} for kind, name in OFFICIAL.items()},
        "tasks": [{"name": t, "version": "1", "capability": CAPABILITY.get(t, "understand"),
                   "options": {}, "data_dir": f"/data/{seed}/{t}",
                   "data": {"path": f"/data/{seed}/{t}", "files": {"meta.json": {"sha256": "m1", "size": 3}}}}
                  for t in tasks],
        "config": {
            "name": "golden", "output": f"runs/{seed}", "seed": seed, "batch_size": 1,
            "model": {"kind": "lavida_o", "checkpoint": f"/ckpt/{seed}", "device": "cpu", "dtype": "float32"},
            "tasks": {t: {"data": f"/nonexistent/{seed}/{t}", "variants": variants[t], "limit": None, "options": {}}
                      for t in tasks},
            "variants": {"plain": {"plan": False, "reflect_rounds": 1, "steps": None},
                         "plan": {"plan": True, "reflect_rounds": 1, "steps": None},
                         "plan_reflect": {"plan": True, "reflect_rounds": 3, "steps": None},
                         "steps1": {"plan": False, "reflect_rounds": 1, "steps": 1},
                         "steps4": {"plan": False, "reflect_rounds": 1, "steps": 4}},
            "backends": {**OFFICIAL, "detector_path": f"/w/{seed}"},
        },
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def write_run(root: Path, samples: dict[str, dict[str, list[dict[str, Any]]]], *, seed: int = 0,
              manifest_edit: Callable[[dict[str, Any]], None] | None = None,
              aggregators: Mapping[str, Aggregator] | None = None,
              speed_rows: list[dict[str, Any]] | None = None) -> Path:
    """`samples[task][variant]` = [{"id", "scores", optional "trace", "output", "prompt",
    "status", "images": {relpath: PIL image}}]. Returns the run folder."""
    aggs = {**AGGREGATORS, **(aggregators or {})}
    root.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {}
    for task, variants in samples.items():
        for variant, rows in variants.items():
            outputs, scores = [], []
            for r in rows:
                status = r.get("status", "ok")
                for rel, img in (r.get("images") or {}).items():
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    img.save(root / rel)
                if status != "ok":
                    outputs.append({"id": r["id"], "status": "error", "error": "RuntimeError: boom"})
                    continue
                output = r.get("output") or {"text": None, "boxes": None, "image": None, "attempts": []}
                outputs.append({"id": r["id"], "task": task, "variant": variant, "status": "ok",
                                "seed": seed * 1000 + len(outputs), "prompt_sha256": sha(r.get("prompt", r["id"])),
                                "output": output, "trace": r.get("trace") or {"nfe": 1, "latency_s": 0.1}})
                scores.append({"id": r["id"], "status": "ok", "output_sha": "x", "scores": r["scores"]})
            d = root / "records" / task / variant
            write_jsonl(d / "outputs.jsonl", outputs)
            write_jsonl(d / "scores.jsonl", scores)
            ok = [s["scores"] for s in scores]
            n_err = sum(1 for o in outputs if o["status"] == "error")
            spec = TASKS.get(task).spec if task in TASKS else None
            metrics.setdefault(task, {})[variant] = {
                "metrics": {k: m.to_json(spec(k) if spec else DEFAULT_SPEC, k) for k, m in aggs[task](ok).items()},
                "counts": {"samples": len(rows), "generated": len(rows) - n_err, "generation_errors": n_err,
                           "missing": 0, "scored": len(ok), "scoring_errors": 0}}
    manifest = base_manifest(list(samples), {t: list(v) for t, v in samples.items()}, seed)
    if manifest_edit:
        manifest_edit(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    notes = {t: {"evaluators": list(TASKS.get(t).evaluators) if t in TASKS else []} for t in metrics}
    doc = {"format": METRICS_FORMAT, "trust": trust_facts(manifest, metrics, notes), "tasks": metrics}
    (root / "metrics.json").write_text(json.dumps(doc, indent=2, allow_nan=False))
    if speed_rows is not None:
        (root / "speed").mkdir(exist_ok=True)
        (root / "speed" / "grounding.json").write_text(json.dumps(speed_rows))
    return root


def copy_samples(samples: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(samples)


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> Image.Image:
    return Image.new("RGB", size, colour)
