"""Behaviour of notebook 1's own code: the unrolled RNN, its prompts and its shipped weights."""
import numpy as np
import pytest

import helpers

import storage
from notebook_code import notebook_namespace

SHIPPED = storage.read_manifest().get("unrolled_rnn.params")


@pytest.fixture(scope="module")
def notebook():
    vocabulary = SHIPPED["vocabulary"]
    return notebook_namespace("01_generative_vs_discriminative.ipynb", also=("device",),
                              index_to_char=vocabulary,
                              char_to_index={char: index for index, char in enumerate(vocabulary)})


@pytest.fixture(scope="module")
def shipped_net(notebook):
    return notebook["load_trained_net"](*storage.verified_weights("unrolled_rnn.params"))


def test_three_characters_in_one_score_per_vocabulary_entry_out(notebook):
    net = notebook["UnrolledRNN"](20, 4, 8)
    net.initialize(notebook["mx"].init.Xavier())
    assert net(notebook["nd"].zeros((5, 3))).shape == (5, 20)


def test_the_three_characters_share_one_input_layer(notebook):
    net = notebook["UnrolledRNN"](20, 4, 8)
    net.initialize(notebook["mx"].init.Xavier())
    net(notebook["nd"].zeros((1, 3)))
    shapes = sorted(p.shape for p in net.collect_params().values())
    assert shapes == sorted([(20, 4), (8, 4), (8,), (8, 8), (8,), (20, 8), (20,)])


def test_probabilities_of_the_next_character_sum_to_one(notebook, shipped_net):
    probabilities = notebook["next_char_probabilities"](shipped_net, "love")
    assert probabilities.shape == (len(SHIPPED["vocabulary"]),)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_only_the_last_three_characters_matter(notebook, shipped_net):
    predict = notebook["next_char_probabilities"]
    np.testing.assert_allclose(predict(shipped_net, "I lov"), predict(shipped_net, "lov"), rtol=1e-6)


def test_shipped_weights_complete_lov_with_e(notebook, shipped_net):
    probabilities = notebook["next_char_probabilities"](shipped_net, "lov")
    assert SHIPPED["vocabulary"][int(probabilities.argmax())] == "e"


def test_short_prompts_and_unknown_characters_are_clear_errors(notebook, shipped_net):
    with pytest.raises(ValueError, match=r"'lo'.* 3 characters"):
        notebook["next_char_probabilities"](shipped_net, "lo")
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['é'\]"):
        notebook["next_char_probabilities"](shipped_net, "café")


def test_shipped_run_reached_the_original_headline():
    assert SHIPPED["history"][-1] <= 2.04
    assert SHIPPED["history"][0] > SHIPPED["history"][-1]
    assert SHIPPED["metric"] < SHIPPED["untrained_metric"]
