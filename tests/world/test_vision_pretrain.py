"""The vision pretraining stage: its cell targets and that it teaches the tower to name objects."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lavida_bench.backends.shapes import Shape
from lavida_bench.world.scene import Scene
from lavida_bench.world.vision_pretrain import CLASSES, VISION_PREFIXES, cell_targets, pretrain_vision

NONE = len(CLASSES)


@pytest.fixture
def micro_network():
    from lavida_bench.model.network import LavidaNetwork
    from lavida_bench.model.tiny import init_weights
    from lavida_bench.world.micro import micro_config

    network = LavidaNetwork(micro_config(vocab_size=64))
    init_weights(network, 0)
    return network


def test_cells_name_the_object_covering_a_quarter_or_more() -> None:
    """64 px, 4x4 cells of 16 px (256 px^2; a quarter is 64). Red at (4, 4): 144 px^2 of cell
    (0,0), 48 of (0,1) and (1,0). Green in the middle: 64 of each of the four middle cells.
    Blue below it: 96 of (3,1) and (3,2), 32 of (2,1) and (2,2), which stay green."""
    red = Shape("circle", "red", (4.0, 4.0, 20.0, 20.0))
    green = Shape("triangle", "green", (24.0, 24.0, 40.0, 40.0))
    blue = Shape("square", "blue", (24.0, 44.0, 40.0, 60.0))
    got = cell_targets(Scene(64, (red, green, blue)), 4).reshape(4, 4)
    r, g, b = (CLASSES.index(c) for c in (("circle", "red"), ("triangle", "green"), ("square", "blue")))
    assert got.tolist() == [[r, NONE, NONE, NONE],
                            [NONE, g, g, NONE],
                            [NONE, g, g, NONE],
                            [NONE, b, b, NONE]]


def test_pretraining_changes_only_the_vision_side_and_beats_naming_no_object(micro_network) -> None:
    before = {n: p.detach().clone() for n, p in micro_network.named_parameters()}
    accuracy = pretrain_vision(micro_network, 500, seed=0)
    changed = {n for n, p in micro_network.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith(VISION_PREFIXES) for n in changed)
    # measured (seed 0, one thread; mean of the last 50 batches): 0.84 at step 500, 0.965 at
    # 1,000; "no object" in every cell scores 0.72 on the world's 1-4 objects
    assert accuracy > 0.78


def test_word_target_puts_object_cells_at_their_words_embeddings() -> None:
    """With `words`, an object cell's feature becomes E[" colour"] + E[" kind"] of the network's own
    embedding table (which does not change) and an empty cell's zero: after 150 steps more cells
    lie nearest their own target among the 31 than calling every cell empty would place."""
    from lavida_bench.model.tiny import tiny_tokenizer
    from lavida_bench.world.mix import corpus
    from lavida_bench.world.vision_pretrain import word_ids

    tokenizer = tiny_tokenizer(corpus(np.random.default_rng(1), 64))
    network = micro_network_for(tokenizer)
    table = network.model.transformer.wte.weight.detach().clone()
    before = {n: p.detach().clone() for n, p in network.named_parameters()}
    accuracy = pretrain_vision(network, 150, seed=0, target="words", tokenizer=tokenizer)
    changed = {n for n, p in network.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith(VISION_PREFIXES) for n in changed)
    assert torch.equal(network.model.transformer.wte.weight, table)
    # measured (seed 0; mean of the last 50 batches): 0.84 at step 150; every cell called empty: 0.72
    assert accuracy > 0.8
    ids = word_ids(tokenizer)
    assert len(set(ids.values())) == len(ids)


def test_place_target_adds_one_code_per_cell_to_object_cells_only() -> None:
    """With `places`, an object cell's goal is its words' embeddings plus a code of its cell, an
    empty cell's goal zero; cells (0, 1) and (1, 0) get different codes (a row code and a column
    code drawn from one seed), each as long as an average colour-and-kind target. Features equal
    to the goals cost nothing and are all counted right; the words alone are not enough."""
    from lavida_bench.model.tiny import tiny_tokenizer
    from lavida_bench.world.mix import corpus
    from lavida_bench.world.vision_pretrain import WordTarget, word_ids

    tokenizer = tiny_tokenizer(corpus(np.random.default_rng(1), 64))
    network = micro_network_for(tokenizer)
    place = WordTarget(network, word_ids(tokenizer), places=True)
    red = Shape("circle", "red", (18.0, 2.0, 30.0, 14.0))  # cell (row 0, column 1)
    blue = Shape("square", "blue", (2.0, 18.0, 14.0, 30.0))  # cell (row 1, column 0)
    scene = Scene(64, (red, blue))
    target = cell_targets(scene, 4)
    goals = place.goals(target, 4)
    codes = place.place_codes(4)
    words = place.words
    r, b = CLASSES.index(("circle", "red")), CLASSES.index(("square", "blue"))
    torch.testing.assert_close(goals[1], words[r] + codes[1])
    torch.testing.assert_close(goals[4], words[b] + codes[4])
    assert not goals[[0, 2, 3, 5, 15]].any()
    assert not torch.allclose(codes[1], codes[4], atol=1e-3)
    torch.testing.assert_close(codes.norm(dim=-1), torch.full((16,), place.unit * words.shape[1] ** 0.5))
    torch.testing.assert_close(WordTarget(network, word_ids(tokenizer), places=True).place_codes(4), codes)
    loss, accuracy = place.loss(goals, [scene], 4)
    assert float(loss) == 0.0 and accuracy == 1.0
    loss, _ = place.loss(words[target], [scene], 4)
    assert float(loss) > 0.0


def micro_network_for(tokenizer):
    from lavida_bench.model.network import LavidaNetwork
    from lavida_bench.world.micro import init_micro_weights, micro_config

    network = LavidaNetwork(micro_config(len(tokenizer)))
    init_micro_weights(network, 0)
    return network


def test_an_unknown_target_or_words_without_a_tokenizer_is_refused(micro_network) -> None:
    from lavida_bench.world.run import RunSettings

    with pytest.raises(ValueError, match="unknown vision target 'pixels'"):
        pretrain_vision(micro_network, 1, seed=0, target="pixels")
    with pytest.raises(ValueError, match="needs the tokenizer"):
        pretrain_vision(micro_network, 1, seed=0, target="words")
    with pytest.raises(ValueError, match="vision_target must be one of classes, words, places"):
        RunSettings(vision_target="pixels")
