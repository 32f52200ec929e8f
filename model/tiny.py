"""A tiny Lavida-O with seeded random weights, saved in the release's exact on-disk layout.

Tests and the demo load it through the same `load_checkpoint` path as the real 10B release. Its
tokenizer is a small byte-level BPE; ids differ from the release's, which is why the model code
reads ids from the tokenizer.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from lavida_bench.model.checkpoint import save_checkpoint
from lavida_bench.model.config import LavidaConfig
from lavida_bench.model.network import LavidaNetwork
from lavida_bench.model.tokens import N_LOC, SPECIAL_TOKENS, SYSTEM_PROMPT, chat_prompt
from lavida_bench.model.vq import VQTokenizer, tiny_vq_config, vq_from_config


def tiny_corpus() -> list[str]:
    """Text the tiny tokenizer's merges are learned from: the release's fixed prompt strings and
    the words of the synthetic fixtures, so demo sequences are as short as real BPE makes them."""
    from lavida_bench.model import prompts

    micro = prompts.micro_conditions(1024, prompts.IMAGE_SETTINGS["demo_1024"])
    words = ("a photo of the an and on left right above below top bottom red orange yellow green blue "
             "purple pink brown black white circle square triangle circles squares triangles one two three "
             "four image chart bar value what is which how many question answer option correct incorrect "
             "make it add remove replace change color shape object objects background realistic 4k")
    return [SYSTEM_PROMPT, chat_prompt("user", "assistant"), prompts.t2i_user("caption", micro),
            prompts.plan_t2i_user("caption", micro), prompts.judge_user("caption"), prompts.plan_edit_user("x"),
            prompts.grounding_prompt("expression"), prompts.feedback_suffix(["feedback"]), words] * 4


def tiny_tokenizer(extra_corpus: Sequence[str] = ()):
    """Byte-level BPE (any text tokenizes) with merges learned from `tiny_corpus` (plus
    `extra_corpus`, e.g. a training set's texts), and the release's special tokens, LOC tokens
    and box delimiters as added special tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    # ByteLevel's printable-first alphabet puts "!" (byte 33) first: id 0, as in LLaDA (the release's lmms-eval wrapper strips leading "!").
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet(), key=lambda ch: (ord(ch) > 255, ord(ch)))
    trainer = trainers.BpeTrainer(vocab_size=768, initial_alphabet=alphabet, show_progress=False,
                                  special_tokens=[])
    tok.train_from_iterator([*tiny_corpus(), *extra_corpus], trainer=trainer)
    specials = [*SPECIAL_TOKENS.values()][:9] + [f"<LOC_{i}>" for i in range(N_LOC)] + [*SPECIAL_TOKENS.values()][9:]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", model_max_length=8192)


def init_weights(network: LavidaNetwork, seed: int) -> None:
    """Seeded N(0, 0.02) weights; norms stay at one. Deterministic across machines (CPU generator)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in network.named_parameters():
            if name.endswith("norm.weight") or "layer_norm" in name or ".norm" in name or (
                    name.endswith(".weight") and p.ndim == 1 and "gen_" in name) or name.endswith("ln_f.weight"):
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)


def make_tiny(seed: int = 0) -> tuple[LavidaNetwork, VQTokenizer, object]:
    tokenizer = tiny_tokenizer()
    cfg = LavidaConfig.tiny(vocab_size=len(tokenizer))
    network = LavidaNetwork(cfg)
    init_weights(network, seed)
    torch.manual_seed(seed)
    vq = VQTokenizer(vq_from_config(tiny_vq_config(cfg.codebook_size)))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # diffusers' default init is seeded by the global RNG; make it explicit
        for p in vq.model.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / max(1, p[0].numel()) ** 0.5))
    return network.eval(), vq, tokenizer


def make_tiny_checkpoint(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny checkpoint folder in the release layout; returns the folder."""
    network, vq, tokenizer = make_tiny(seed)
    return save_checkpoint(folder, network, vq, tokenizer, {"weights": "random", "seed": seed})
