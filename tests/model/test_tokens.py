"""Special ids, the "llada" chat template, image-placeholder tokenization and box strings
(LaVida-O `llava/conversation.py:416-428`, `llava/mm_utils.py:447-465`, `llava/eval/predict_grounding.py:100-105`).
Expected strings are written out literally."""
from __future__ import annotations

import pytest
from lavida_bench.model import tokens
from lavida_bench.model.tiny import tiny_tokenizer
from lavida_bench.model.tokens import (
    IMAGE_INDEX,
    SpecialIds,
    chat_prompt,
    parse_boxes,
    tokenize_with_images,
)

# LaVida-O llava/conversation.py:416-428, verbatim.
SYSTEM = ("You are a helpful language and vision assistant. You are able to understand the visual content that "
          "the user provides, and assist the user with a variety of tasks using natural language.")
HEAD = "<|startoftext|><|start_header_id|>system<|end_header_id|>\n\n" + SYSTEM + "<|eot_id|>"


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def test_system_prompt_verbatim() -> None:
    assert tokens.SYSTEM_PROMPT == SYSTEM


def test_chat_prompt_user_only() -> None:
    want = (HEAD + "<|start_header_id|>user<|end_header_id|>\n\nWhat is this?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert chat_prompt("What is this?") == want
    assert chat_prompt("  What is this?\n") == want  # content.strip() (the LLaDA chat template)


def test_chat_prompt_prefilled_assistant_keeps_trailing_header() -> None:
    """The release's removesuffix result is discarded, so the generation header follows the
    pre-filled assistant turn (predict_t2i_edit.py:240, 270; Demo.ipynb cells 6/11)."""
    want = (HEAD + "<|start_header_id|>user<|end_header_id|>\n\nGenerate an image with the caption:\n a cat<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n<|reserved_token_5|><|reserved_token_5|><|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert chat_prompt("Generate an image with the caption:\n a cat ", "<|reserved_token_5|>" * 2) == want


def test_chat_prompt_empty_assistant_is_a_turn() -> None:
    """An empty plan is still an assistant message (only None is skipped, conversation.py:110-122)."""
    assert chat_prompt("hi", "").endswith("hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<|eot_id|>"
                                          "<|start_header_id|>assistant<|end_header_id|>\n\n")


def ids(tok, text: str) -> list[int]:
    return tok(text).input_ids


def test_tiny_tokenizer_does_not_prepend_bos(tok) -> None:
    assert ids(tok, "ab") == [tok.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids("b")]


def test_tokenize_without_leading_bos_drops_nothing(tok) -> None:
    bos = tok.convert_tokens_to_ids("<|startoftext|>")
    assert tokenize_with_images(tok, "ab<image>\ncd<image>", bos) == (
        ids(tok, "ab") + [IMAGE_INDEX] + ids(tok, "\ncd") + [IMAGE_INDEX])


def test_tokenize_with_leading_bos_drops_first_id_of_every_chunk(tok) -> None:
    """mm_utils.py:447-465 literally: the prompt starts with BOS (the chat template writes it), so BOS is kept
    once and the first id of each later chunk - here the "\\n" after <image> - is dropped."""
    bos = tok.convert_tokens_to_ids("<|startoftext|>")
    prompt = "<|startoftext|>x<image>\nWhat?"
    got = tokenize_with_images(tok, prompt, bos)
    assert got == [bos] + ids(tok, "x") + [IMAGE_INDEX] + ids(tok, "What?")
    assert ids(tok, "\nWhat?")[1:] == ids(tok, "What?")  # what was dropped is exactly the newline


def test_tokenize_real_chat_prompt_drops_the_newline_after_image(tok) -> None:
    bos = tok.convert_tokens_to_ids("<|startoftext|>")
    prompt = chat_prompt("<image>\nWhat?")
    before, after = prompt.split("<image>")
    got = tokenize_with_images(tok, prompt, bos)
    assert got == ids(tok, before) + [IMAGE_INDEX] + ids(tok, after)[1:]
    assert got.count(IMAGE_INDEX) == 1 and got.count(bos) == 1


class BosTokenizer:
    """A tokenizer that prepends BOS to every call, the case the release's rule was written for."""

    bos = 1000

    def __call__(self, text: str):
        class Out:
            input_ids = [BosTokenizer.bos] + [ord(c) for c in text]
        return Out()


def test_tokenize_with_bos_prepending_tokenizer_loses_no_real_token() -> None:
    got = tokenize_with_images(BosTokenizer(), "ab<image>\ncd<image>", BosTokenizer.bos)
    assert got == [1000, ord("a"), ord("b"), IMAGE_INDEX, ord("\n"), ord("c"), ord("d"), IMAGE_INDEX]


def test_parse_boxes() -> None:
    text = ("<box_p> cat </box_p><LOC_BEGIN><LOC_12><LOC_0><LOC_1024><LOC_999><LOC_END> and "
            "<LOC_BEGIN><LOC_1><LOC_2><LOC_3><LOC_4><LOC_END><LOC_7><LOC_8>")
    assert parse_boxes(text) == [[12, 0, 1024, 999], [1, 2, 3, 4]]  # trailing incomplete group ignored
    assert parse_boxes("no boxes here") == []
    assert parse_boxes(tokens.loc_string([5, 6, 7, 8])) == [[5, 6, 7, 8]]
    assert tokens.loc_string([5, 6, 7, 8]) == "<LOC_BEGIN><LOC_5><LOC_6><LOC_7><LOC_8><LOC_END>"


def test_clean_decoded() -> None:
    assert tokens.clean_decoded("a plan<|eot_id|><|endoftext|><|endoftext|>") == "a plan"


def test_special_ids_from_tiny_tokenizer(tok) -> None:
    special = SpecialIds.from_tokenizer(tok)
    conv = tok.convert_tokens_to_ids
    assert special.mask == conv("<|mdm_mask|>") and special.gen_image == conv("<|reserved_token_5|>")
    assert special.source_image == conv("<|reserved_token_6|>") and special.eot == conv("<|eot_id|>")
    assert special.loc0 + 1024 == conv("<LOC_1024>") and special.loc_end == conv("<LOC_END>")
    assert special.loc_value(conv("<LOC_37>")) == 37
    assert special.loc_value(special.loc0 - 1) is None and special.loc_value(special.loc0 + 1025) is None


class VocabTokenizer:
    def __init__(self, vocab: dict[str, int]):
        self.vocab = vocab

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)


def full_vocab() -> dict[str, int]:
    vocab = {tok: 100 + i for i, tok in enumerate(tokens.SPECIAL_TOKENS.values())}
    vocab.update({f"<LOC_{i}>": 1000 + i for i in range(tokens.N_LOC)})
    return vocab


def test_special_ids_missing_token_is_named() -> None:
    SpecialIds.from_tokenizer(VocabTokenizer(full_vocab()))  # complete: no error
    vocab = full_vocab()
    del vocab["<|mdm_mask|>"], vocab["<LOC_1024>"]
    with pytest.raises(ValueError, match=r"<\|mdm_mask\|>.*<LOC_1024>"):
        SpecialIds.from_tokenizer(VocabTokenizer(vocab))


def test_special_ids_non_consecutive_loc_tokens() -> None:
    vocab = full_vocab()
    vocab["<LOC_500>"] = 5
    with pytest.raises(ValueError, match="i=500"):
        SpecialIds.from_tokenizer(VocabTokenizer(vocab))
