"""Notebook 1's parameters and training plumbing: every value a reader might type is applied, or
refused with one sentence naming the parameter; an interrupted run resumes to the same weights."""
import ast
import json
import re

import numpy as np
import pytest

import helpers
from notebook_code import NOTEBOOKS, notebook_namespace

NOTEBOOK = "01_generative_vs_discriminative.ipynb"
WEIGHTS_FILE = "unrolled_rnn.params"


def cells():
    return json.loads((NOTEBOOKS / NOTEBOOK).read_text())["cells"]


def tagged_source(tag):
    return next("".join(cell["source"]) for cell in cells() if tag in cell["metadata"].get("tags", []))


def validate(capsys, **parameters):
    """Run the parameters cell, override `parameters`, run the validation cell; (namespace, printed)."""
    namespace = {"helpers": helpers}
    exec(tagged_source("parameters"), namespace)
    namespace.update(parameters)
    exec(tagged_source("validation"), namespace)
    return namespace, capsys.readouterr().out


def notebook_config(**parameters):
    """The `config` dict the notebook passes to choose_weights, built from the notebook's own line."""
    namespace = {"helpers": helpers}
    exec(tagged_source("parameters"), namespace)
    namespace.update(parameters)
    source = next("".join(cell["source"]) for cell in cells() if "config = dict(" in "".join(cell["source"]))
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["config"]:
            exec(compile(ast.Module(body=[node], type_ignores=[]), NOTEBOOK, "exec"), namespace)
            return namespace["config"]
    raise AssertionError("the notebook has no `config = ...` line")


@pytest.fixture(scope="module")
def notebook():
    vocabulary = helpers.read_manifest()[WEIGHTS_FILE]["vocabulary"]
    from mxnet import gluon
    return notebook_namespace(NOTEBOOK, also=("device",), index_to_char=vocabulary,
                              char_to_index={char: index for index, char in enumerate(vocabulary)},
                              loss_function=gluon.loss.SoftmaxCrossEntropyLoss(),
                              uniform_loss=float(np.log(len(vocabulary))))


@pytest.fixture(scope="module")
def shipped_net(notebook):
    path, entry = helpers.verified_weights(WEIGHTS_FILE)
    return notebook["load_trained_net"](path, entry)


# ---------------------------------------------------------------- the validation cell

def test_the_defaults_pass(capsys):
    namespace, printed = validate(capsys)
    assert printed.strip() == "every parameter is usable"
    assert namespace["PROMPTS"] == ["lov", "the", "wha"]


@pytest.mark.parametrize("name, value", [
    ("EMBEDDING_SIZE", 0), ("HIDDEN_SIZE", -1), ("HIDDEN_SIZE", 100_000), ("HIDDEN_SIZE", 64.0),
    ("BATCH_SIZE", 0), ("BATCH_SIZE", -1), ("BATCH_SIZE", True), ("EPOCHS", 0), ("EPOCHS", 2.5),
    ("SEED", -1), ("SEED", 2**32), ("SAMPLES_PER_CLASS", 0), ("SAMPLE_LENGTH", 0), ("SAMPLE_LENGTH", "200")])
def test_a_count_out_of_range_is_one_sentence_naming_it(capsys, name, value):
    with pytest.raises(helpers.ParameterError,
                       match=rf"^{name} = {re.escape(repr(value))} is not a whole number from 1?0?.* try \d+$"):
        validate(capsys, **{name: value})


@pytest.mark.parametrize("value", [0, -0.001, float("nan"), float("inf"), "0.01", True])
def test_a_learning_rate_that_is_not_a_positive_number_is_refused(capsys, value):
    with pytest.raises(helpers.ParameterError, match=rf"^LEARNING_RATE = {re.escape(repr(value))} is not a "
                                                     r"positive number; try 0.001"):
        validate(capsys, LEARNING_RATE=value)


@pytest.mark.parametrize("name, value", [("TRAIN", "yes"), ("TRAIN", 1), ("FRESH_START", "False")])
def test_switches_must_be_true_or_false(capsys, name, value):
    with pytest.raises(helpers.ParameterError, match=rf"^{name} = {re.escape(repr(value))} must be True or False$"):
        validate(capsys, **{name: value})


def test_fresh_start_without_training_says_it_does_nothing(capsys):
    _, printed = validate(capsys, FRESH_START=True, TRAIN=False)
    assert "FRESH_START = True does nothing without TRAIN = True" in printed


def test_one_string_of_prompts_is_one_prompt_not_one_per_letter(capsys):
    namespace, printed = validate(capsys, PROMPTS="love")
    assert namespace["PROMPTS"] == ["love"]
    assert "PROMPTS = 'love' is one text, not a list: using it as the single prompt ['love']" in printed


def test_no_prompt_at_all_is_refused(capsys):
    with pytest.raises(helpers.ParameterError, match=r"^PROMPTS = \[\] holds no prompt; give at least one"):
        validate(capsys, PROMPTS=[])


@pytest.mark.parametrize("value", [5, ["lov", 3], None])
def test_prompts_must_be_texts(capsys, value):
    with pytest.raises(helpers.ParameterError, match=r"^PROMPTS = .* must be a list of texts"):
        validate(capsys, PROMPTS=value)


# ---------------------------------------------------------------- prompts the network cannot read

def test_a_bad_prompt_prints_its_error_and_the_others_go_on(notebook, shipped_net, capsys):
    predictions = notebook["predict_prompts"](shipped_net, ["lov", "lo", "ca\0t", "café", "the"])
    printed = capsys.readouterr().out.splitlines()
    assert list(predictions) == ["lov", "the"]
    assert printed[0].startswith("'lov' -> 'e'")
    assert printed[1] == "'lo': prompt 'lo' has 2 character(s); the network reads the last 3, so give at least 3"
    assert "holds the padding character '\\0'" in printed[2]
    assert "not in the vocabulary: ['é']" in printed[3]
    assert printed[4].startswith("'the' -> ")


def test_the_padding_character_is_refused_anywhere_in_a_prompt(notebook, shipped_net):
    for prompt in ["\0lov", "lo\0v", "lov\0"]:
        with pytest.raises(ValueError, match="padding character"):
            notebook["next_char_probabilities"](shipped_net, prompt)


def test_sampling_writes_the_asked_length_and_never_the_padding(notebook, shipped_net):
    helpers.seed_everything(0)
    written = notebook["sample_text"](shipped_net, "lov", 100)
    assert written.startswith("lov") and len(written) == 103
    assert "\0" not in written
    assert set(written) <= set(notebook["index_to_char"])


def test_a_texts_log_probability_is_the_sum_over_its_characters(notebook, shipped_net):
    scores = notebook["log_probabilities"](shipped_net, "the love")
    assert scores.shape == (5,)
    first = notebook["next_char_probabilities"](shipped_net, "the")[notebook["char_to_index"][" "]]
    assert scores[0] == pytest.approx(np.log(first), rel=1e-6)
    assert (scores < 0).all()


# ---------------------------------------------------------------- which weights are used, and why

def test_a_size_the_shipped_weights_do_not_have_is_named_with_the_way_out(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GENMODELS_CHECKPOINT_DIR", str(tmp_path))  # no experiment of the reader's
    helpers.choose_weights("unrolled_rnn", WEIGHTS_FILE, notebook_config(HIDDEN_SIZE=64))
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1
    assert "HIDDEN_SIZE = 64 differs from the shipped 256; set TRAIN = True" in printed


def test_the_default_parameters_use_the_shipped_weights_as_they_are(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GENMODELS_CHECKPOINT_DIR", str(tmp_path))
    _, _, source = helpers.choose_weights("unrolled_rnn", WEIGHTS_FILE, notebook_config())
    assert source == "shipped"
    assert capsys.readouterr().out == f"using the shipped weights/{WEIGHTS_FILE} (config matches)\n"


def test_weights_of_another_shape_are_one_sentence(notebook, tmp_path):
    path, entry = helpers.verified_weights(WEIGHTS_FILE)
    wrong = {**entry, "config": {**entry["config"], "hidden_size": 128}}
    with pytest.raises(helpers.ParameterError, match=r"does not fit an UnrolledRNN with EMBEDDING_SIZE = 30 "
                                                     r"and HIDDEN_SIZE = 128 .*git checkout weights/"):
        notebook["load_trained_net"](path, wrong)


# ---------------------------------------------------------------- training that goes wrong, and resuming

@pytest.mark.parametrize("loss", [float("nan"), float("inf"), 9.5])
def test_a_diverging_loss_stops_the_run_naming_the_learning_rate(notebook, loss):
    with pytest.raises(helpers.ParameterError, match=r"LEARNING_RATE = 0.5 is too large; try 0.05 with FRESH_START"):
        notebook["stop_if_diverged"](loss, 0.5)
    notebook["stop_if_diverged"](2.5, 0.5)  # worse than the shipped run, but learning: goes on


def tiny_run(notebook, folder, epochs, learning_rate=0.01):
    """Train a small UnrolledRNN on random windows; returns (net, record)."""
    config = dict(embedding_size=4, hidden_size=8, batch_size=32, epochs=epochs,
                  learning_rate=learning_rate, seed=3)
    windows = np.random.RandomState(0).randint(1, 20, size=(320, 4))
    helpers.seed_everything(config["seed"])
    net = notebook["UnrolledRNN"](20, 4, 8)
    net.initialize(notebook["mx"].init.Xavier())
    record = notebook["train_with_checkpoints"](net, windows[:, :3], windows[:, 3], config, folder)
    return net, record


def parameters_of(net):
    return [parameter.data().asnumpy() for parameter in net.collect_params().values()]


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(notebook, tmp_path, capsys):
    uninterrupted, whole = tiny_run(notebook, tmp_path / "whole", epochs=2)
    tiny_run(notebook, tmp_path / "interrupted", epochs=1)
    resumed, record = tiny_run(notebook, tmp_path / "interrupted", epochs=2)
    assert "epoch(s) done" in capsys.readouterr().out
    assert record["history"] == whole["history"]
    for mine, theirs in zip(parameters_of(resumed), parameters_of(uninterrupted)):
        np.testing.assert_array_equal(mine, theirs)


def test_a_checkpoint_of_other_parameters_is_never_resumed_in_silence(notebook, tmp_path):
    tiny_run(notebook, tmp_path, epochs=1, learning_rate=0.01)
    with pytest.raises(helpers.ParameterError, match=r"holds a run with LEARNING_RATE = 0.01; set that back "
                                                     r"to resume it, or set FRESH_START = True"):
        tiny_run(notebook, tmp_path, epochs=2, learning_rate=0.02)


def test_a_checkpoint_with_more_epochs_than_asked_is_named(notebook, tmp_path):
    tiny_run(notebook, tmp_path, epochs=2)
    with pytest.raises(helpers.ParameterError, match=r"holds 2 epochs, more than EPOCHS = 1; raise EPOCHS"):
        tiny_run(notebook, tmp_path, epochs=1)


def test_a_huge_learning_rate_stops_training_with_a_sentence(notebook, tmp_path):
    with pytest.raises(helpers.ParameterError, match=r"LEARNING_RATE = 1e\+06 is too large"):
        tiny_run(notebook, tmp_path, epochs=1, learning_rate=1e6)
