"""`lavida-bench model-info`: config summary, parameter counts per branch and task, and for a
checkpoint folder the key report (what is missing, unexpected or wrongly shaped)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lavida_bench.model.config import LavidaConfig
from lavida_bench.model.params import PAPER_BILLIONS, count_parameters


def model_info(preset: str | None = None, checkpoint: str | Path | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if checkpoint is not None:
        from lavida_bench.model.checkpoint import VQ_PREFIX, check_keys, meta_model, tensor_specs

        folder = Path(checkpoint)
        cfg, network = meta_model(folder)  # refuses a bad folder with one line naming the file
        specs = tensor_specs(folder)
        report = check_keys(network, specs)
        info["checkpoint"] = {"folder": str(folder), "tensors": len(specs),
                              "vq_tensors_in_shards": sum(k.startswith(VQ_PREFIX) for k in specs),
                              "keys": report.to_json(), "summary": report.describe()}
    else:
        cfg = LavidaConfig.official() if preset in (None, "official") else LavidaConfig.tiny()
        info["preset"] = preset or "official"
    counts = count_parameters(cfg)
    info["config"] = cfg.summary()
    info["parameters"] = counts.table()
    info["paper_billions"] = PAPER_BILLIONS
    return info


def render(info: dict[str, Any]) -> str:
    lines = [f"# Lavida-O model info ({info.get('preset') or info['checkpoint']['folder']})", ""]
    c = info["config"]
    lines.append(f"und: {c['n_layers']} blocks x d={c['d_model']} (MLP {c['mlp_hidden_size']}), "
                 f"gen: d={c['d_model_gen']} (MLP {c['mlp_hidden_size_gen']}), joint-attention blocks: "
                 f"{c['joint_layers']}, vocab {c['vocab_size']}, codebook {c['codebook_size']}")
    lines += ["", "| part | parameters | billions |", "|---|---:|---:|"]
    for name, n in info["parameters"].items():
        lines.append(f"| {name} | {n:,} | {n / 1e9:.3f} |")
    paper = info["paper_billions"]
    lines.append("")
    lines.append("paper: " + ", ".join(f"{k} {v}B" for k, v in paper.items())
                 + " (text_to_image_paper_accounting uses the paper's 16 joint blocks; the release runs 17)")
    if "checkpoint" in info:
        lines += ["", f"checkpoint keys: {info['checkpoint']['summary']}"]
    return "\n".join(lines)
