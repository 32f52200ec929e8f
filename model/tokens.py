"""Special tokens, the "llada" chat template and image-placeholder tokenization, as the release
builds them (LaVida-O `llava/conversation.py:416-428`, `llava/mm_utils.py:447-465`,
`llava/train/train.py:1048-1053`). Ids are read from the checkpoint's tokenizer by token string,
never hard-coded (the release code does not pin the LOC/box ids); the release's values are noted for reference.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

IMAGE_TOKEN = "<image>"
IMAGE_INDEX = -200  # the SigLIP feature slot id in token lists (constants.py:20)

# System prompt of the "llada" conversation template (conversation.py:416-428), verbatim.
SYSTEM_PROMPT = ("You are a helpful language and vision assistant. You are able to understand the visual "
                 "content that the user provides, and assist the user with a variety of tasks using natural "
                 "language.")

# token string -> attribute (release id in the comment; LaVida-O predict_t2i_edit.py:187-194, train.py:1048-1053)
SPECIAL_TOKENS = {
    "bos": "<|startoftext|>",  # 126080
    "eos": "<|endoftext|>",  # 126081, also pad
    "start_header": "<|start_header_id|>",  # 126346
    "end_header": "<|end_header_id|>",  # 126347
    "eot": "<|eot_id|>",  # 126348
    "mask": "<|mdm_mask|>",  # 126336, the text mask token
    "gen_image": "<|reserved_token_5|>",  # 126089, one per generated-image position
    "source_image": "<|reserved_token_6|>",  # 126090, one per source-image VQ position (editing)
    "fake_image": "<|reserved_token_7|>",  # 126091, collapsed image slot in plan-only training data
    "box_open": "<box_p>",
    "box_close": "</box_p>",
    "loc_begin": "<LOC_BEGIN>",
    "loc_end": "<LOC_END>",
}
N_LOC = 1025  # <LOC_0> .. <LOC_1024>
LOC_PATTERN = re.compile(r"<LOC_([0-9]+)>")  # predict_grounding.py:100


@dataclass(frozen=True)
class SpecialIds:
    bos: int
    eos: int
    start_header: int
    end_header: int
    eot: int
    mask: int
    gen_image: int
    source_image: int
    fake_image: int
    box_open: int
    box_close: int
    loc_begin: int
    loc_end: int
    loc0: int  # id of <LOC_0>; <LOC_i> = loc0 + i

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> "SpecialIds":
        vocab = tokenizer.get_vocab()
        missing = [tok for tok in [*SPECIAL_TOKENS.values(), "<LOC_0>", f"<LOC_{N_LOC - 1}>"] if tok not in vocab]
        if missing:
            raise ValueError(f"tokenizer lacks the release's special tokens {missing[:5]}"
                             f"{' ...' if len(missing) > 5 else ''}")
        loc0 = vocab["<LOC_0>"]
        bad = [i for i in range(N_LOC) if vocab.get(f"<LOC_{i}>") != loc0 + i]
        if bad:
            raise ValueError(f"tokenizer: <LOC_i> ids are not consecutive from <LOC_0>={loc0} (first bad i={bad[0]})")
        return cls(**{attr: vocab[tok] for attr, tok in SPECIAL_TOKENS.items()}, loc0=loc0)

    def loc_value(self, token_id: int) -> int | None:
        """Bin index of a LOC token id, or None for any other id."""
        i = token_id - self.loc0
        return i if 0 <= i < N_LOC else None


def chat_prompt(user: str, assistant: str | None = None, system: str = SYSTEM_PROMPT) -> str:
    """The "llada" template: each turn `<|start_header_id|>role<|end_header_id|>\\n\\n{content.strip()}<|eot_id|>`,
    BOS first, and the generation header ALWAYS appended, also after a pre-filled assistant turn
    (the release's `removesuffix` result is discarded, predict_t2i_edit.py:240, 270)."""
    turns = [("system", system), ("user", user)] + ([("assistant", assistant)] if assistant is not None else [])
    body = "".join(f"<|start_header_id|>{role}<|end_header_id|>\n\n{text.strip()}<|eot_id|>" for role, text in turns)
    return "<|startoftext|>" + body + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def tokenize_with_images(tokenizer: Any, prompt: str, bos_id: int) -> list[int]:
    """`tokenizer_image_token` (mm_utils.py:447-465), replicated literally: split on
    `<image>`, tokenize each chunk, join with IMAGE_INDEX. If the first id is BOS, keep it once and
    drop the first id of every chunk - with a tokenizer that does not prepend BOS this drops a
    real token after each `<image>`, which is what the released model saw at evaluation."""
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split(IMAGE_TOKEN)]
    ids: list[int] = []
    offset = 0
    if chunks and chunks[0] and chunks[0][0] == bos_id:
        offset = 1
        ids.append(bos_id)
    for i, chunk in enumerate(chunks):
        if i:
            ids.append(IMAGE_INDEX)
        ids.extend(chunk[offset:])
    return ids


def loc_string(bins: Sequence[int]) -> str:
    """`<LOC_BEGIN><LOC_x1><LOC_y1><LOC_x2><LOC_y2><LOC_END>` (predict_grounding.py:104-105)."""
    return "<LOC_BEGIN>" + "".join(f"<LOC_{int(b)}>" for b in bins) + "<LOC_END>"


def parse_boxes(text: str) -> list[list[int]]:
    """All complete 4-integer groups of LOC tokens in decoded text, in order."""
    values = [int(v) for v in LOC_PATTERN.findall(text)]
    return [values[i:i + 4] for i in range(0, len(values) - len(values) % 4, 4)]


def clean_decoded(text: str) -> str:
    """Strip what the release strips from decoded plans/feedback (predict_t2i_edit.py:736)."""
    for junk in ("<|eot_id|>", "<|endoftext|>", "<image_gen_fake>"):
        text = text.replace(junk, "")
    return text
