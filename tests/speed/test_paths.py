"""Optimised paths give the plain paths' outputs; pass counts are exact; baselines run."""
from __future__ import annotations

import pytest
import torch

from lavida_bench.api import Options, Request
from lavida_bench.model.pipeline import LavidaPipeline
from lavida_bench.speed.baselines import (
    BOX_TOKENS,
    AutoregressiveLavida,
    grounding_prefix,
)
from lavida_bench.speed.cases import noise_image
from lavida_bench.speed.paths import (
    RecomputePrefix,
    SplitGuidance,
    image_only,
    swapped_network,
)
from lavida_bench.speed.record import record_passes

from .conftest import RESOLUTION, STEPS

TOKENS = 8


def text_requests(n: int) -> list[Request]:
    return [Request(f"u{i}", "understand", "What is this?" + " really" * i, [noise_image((60, 40), i)],
                    Options(max_new_tokens=TOKENS), seed=i) for i in range(n)]


def draw_requests(n: int, capability: str = "generate") -> list[Request]:
    return [Request(f"d{i}", capability, f"a red cube number {i}",
                    [noise_image((80, 60), i)] if capability == "edit" else [],
                    Options(steps=STEPS, resolution=RESOLUTION), seed=i) for i in range(n)]


def test_prefix_cache_off_gives_the_same_tokens_with_one_prefix_per_step(pipe: LavidaPipeline) -> None:
    reqs = text_requests(2)
    with record_passes(pipe.net) as on:
        cached = pipe.understand(reqs)
    net = pipe.net  # record the real network: the stand-in forwards to it
    with swapped_network(pipe, RecomputePrefix(net)), record_passes(net) as off:
        recomputed = pipe.understand(reqs)
    assert [r.text for r in cached] == [r.text for r in recomputed]
    # block = min(128, 8) = 8, one step per token (generate.py:217-390): 8 answer passes
    assert (on.prefix_encodings, on.network_passes) == (1, 1 + TOKENS)
    assert (off.prefix_encodings, off.network_passes) == (TOKENS, 2 * TOKENS)
    assert pipe.net.__class__.__name__ == "LavidaNetwork"  # swapped back


def test_image_only_gives_the_same_codes(pipe: LavidaPipeline) -> None:
    reqs = draw_requests(2)
    with image_only(pipe, False), record_passes(pipe.net, pipe.ck.vq) as plain:
        a = pipe.generate(reqs)
    with image_only(pipe, True), record_passes(pipe.net, pipe.ck.vq) as fast:
        b = pipe.generate(reqs)
    assert torch.equal(plain.codes[0], fast.codes[0])
    assert [r.image.tobytes() for r in a] == [r.image.tobytes() for r in b]
    assert plain.network_passes == fast.network_passes == STEPS
    assert not any(p.image_only for p in plain.forwards) and all(p.image_only for p in fast.forwards)


@pytest.mark.parametrize("capability, ways", [("generate", 2), ("edit", 3)])
def test_unbatched_cfg_gives_the_same_codes(pipe: LavidaPipeline, capability: str, ways: int) -> None:
    reqs = draw_requests(2, capability)
    with record_passes(pipe.net, pipe.ck.vq) as batched:
        getattr(pipe, capability)(reqs)
    net = pipe.net
    with swapped_network(pipe, SplitGuidance(net, ways)), record_passes(net, pipe.ck.vq) as split:
        getattr(pipe, capability)(reqs)
    assert torch.equal(batched.codes[0], split.codes[0])
    assert batched.network_passes == STEPS
    assert split.network_passes == ways * STEPS
    # one batched pass holds every guidance row of both requests
    assert len(batched.forwards[0].rows) == ways * 2 and len(split.forwards[0].rows) == 2


def test_grounding_passes(pipe: LavidaPipeline) -> None:
    for steps in (1, 4):
        reqs = [Request(f"g{i}", "ground", "the cat", [noise_image((64, 48), i)], Options(steps=steps))
                for i in range(2)]
        with record_passes(pipe.net) as rec:
            results = pipe.ground(reqs)
        assert rec.network_passes == steps and results[0].trace.nfe == steps
        assert [p.kind for p in rec.passes].count("encode_tiles") == 1


def test_autoregressive_baseline_is_one_token_per_pass(pipe: LavidaPipeline) -> None:
    assert grounding_prefix("the cat").endswith("Give bounding boxes in LOC format.<|eot_id|>"
                                                "<|start_header_id|>assistant<|end_header_id|>\n\n<LOC_BEGIN>")
    ar = AutoregressiveLavida(pipe)
    reqs = [Request(f"g{i}", "ground", "the cat" + " here" * i, [noise_image((64, 48), i)]) for i in range(2)]
    with record_passes(pipe.net) as rec:
        results = ar.ground(reqs)
    assert rec.network_passes == BOX_TOKENS and results[0].trace.nfe == BOX_TOKENS
    assert rec.prefix_encodings == 1
    # later passes feed one token per row against the cache of everything before it
    assert [r.text for r in rec.forwards[1].rows] == [1, 1]
    assert rec.forwards[2].rows[0].cache == rec.forwards[1].rows[0].cache + 1
    with record_passes(pipe.net) as rec:
        texts = ar.understand(text_requests(1))
    assert rec.network_passes == TOKENS and texts[0].trace.nfe == TOKENS


def test_ar_batch_matches_single_rows(pipe: LavidaPipeline) -> None:
    """Right-padded rows decode as they would alone (each row keeps its own positions)."""
    ar = AutoregressiveLavida(pipe)
    reqs = [Request(f"g{i}", "ground", "the cat" + " here" * 3 * i, [noise_image((64, 48), i)]) for i in range(2)]
    rows = [pipe.builder.row(grounding_prefix(r.prompt), pipe.builder.image_features([pipe.parts.tiles(r.images[0])]))
            for r in reqs]
    together, _ = ar.decode(rows, BOX_TOKENS)
    alone = torch.cat([ar.decode([row], BOX_TOKENS)[0] for row in rows])
    assert torch.equal(together, alone)


def test_recorder_restores_the_network(pipe: LavidaPipeline) -> None:
    with record_passes(pipe.net, pipe.ck.vq):
        assert "forward" in vars(pipe.net)
    assert "forward" not in vars(pipe.net) and "decode" not in vars(pipe.ck.vq)


def test_qwen_tiny_grounding_forces_the_answer_length() -> None:
    from lavida_bench.speed.qwen import QwenBaseline

    qwen = QwenBaseline.build(preset="tiny", answer_tokens=5, prompt_tokens=7)
    reqs = [Request(f"q{i}", "ground", "the cat", [noise_image((120, 90), i)]) for i in range(2)]
    results = qwen.ground(reqs)
    assert [r.trace.nfe for r in results] == [5, 5]
    assert qwen.describe()["answer_tokens"] == 5
    ids = qwen._ids("x", 3)
    cfg = qwen.model.config
    assert ids.count(cfg.image_token_id) == 3 and len(ids) == 7 + 3 + 2


def test_random_weights_repeat_for_a_seed() -> None:
    """A random-weight model is the same for the same seed, VQ model included, so two speed runs
    (or two processes) draw the same codes and images."""
    from lavida_bench.speed.random_model import random_checkpoint

    a, b = random_checkpoint("tiny", seed=3), random_checkpoint("tiny", seed=3)
    for ours, theirs in ((a.network, b.network), (a.vq.model, b.vq.model)):
        assert all(torch.equal(x, y) for x, y in zip(ours.state_dict().values(), theirs.state_dict().values()))
