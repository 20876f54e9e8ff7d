"""Notebook 1's parameters and training plumbing: every value a reader might type is applied, or
refused with one sentence naming the parameter; an interrupted run resumes to the same weights."""
import ast
import json

import numpy as np
import pytest

import helpers

import storage
from notebook_code import NOTEBOOKS, notebook_namespace

NOTEBOOK = "01_generative_vs_discriminative.ipynb"
WEIGHTS_FILE = "unrolled_rnn.params"


def cells():
    return json.loads((NOTEBOOKS / NOTEBOOK).read_text())["cells"]


def tagged_source(tag):
    return next("".join(cell["source"]) for cell in cells() if tag in cell["metadata"].get("tags", []))


def validate(monkeypatch, **parameters):
    """Run the parameters cell, override `parameters`, run the checking cell (not in smoke mode);
    returns the namespace."""
    monkeypatch.setenv(helpers.SMOKE_ENV_VAR, "0")
    namespace = {"helpers": helpers, "storage": storage}
    exec(tagged_source("parameters"), namespace)
    namespace.update(parameters)
    exec(tagged_source("validation"), namespace)
    return namespace


def notebook_config(**parameters):
    """The `config` dict the notebook passes to choose_weights, built from the notebook's own line."""
    namespace = {"helpers": helpers, "storage": storage}
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
    vocabulary = storage.read_manifest()[WEIGHTS_FILE]["vocabulary"]
    from mxnet import gluon
    return notebook_namespace(NOTEBOOK, also=("device",), index_to_char=vocabulary,
                              char_to_index={char: index for index, char in enumerate(vocabulary)},
                              loss_function=gluon.loss.SoftmaxCrossEntropyLoss(),
                              uniform_loss=float(np.log(len(vocabulary))))


@pytest.fixture(scope="module")
def shipped_net(notebook):
    path, entry = storage.verified_weights(WEIGHTS_FILE)
    return notebook["load_trained_net"](path, entry)


# ---------------------------------------------------------------- the checking cell

SHIPPED_CONFIG = storage.shipped_config(WEIGHTS_FILE)


def test_the_defaults_pass_and_are_the_shipped_configuration(monkeypatch):
    namespace = validate(monkeypatch)
    assert SHIPPED_CONFIG and {key: namespace[key.upper()] for key in SHIPPED_CONFIG} == SHIPPED_CONFIG


def test_every_parameter_but_the_prompts_has_a_rule(monkeypatch):
    namespace = {"helpers": helpers, "storage": storage}
    exec(tagged_source("parameters"), namespace)
    parameters = {name for name in namespace if name.isupper()}
    assert set(validate(monkeypatch)["RULES"]) == parameters - {"PROMPTS"}  # PROMPTS: read prompt by prompt


@pytest.mark.parametrize("name, value", [
    ("EMBEDDING_SIZE", 0), ("HIDDEN_SIZE", 64.5), ("BATCH_SIZE", True), ("EPOCHS", 0), ("SEED", 2**32),
    ("LEARNING_RATE", float("nan")), ("LEARNING_RATE", "0.01"), ("SAMPLES_PER_CLASS", 0),
    ("SAMPLE_LENGTH", "200"), ("TRAIN", "yes"), ("FRESH_START", 1)])
def test_an_unusable_value_is_refused_naming_the_parameter_and_the_shipped_value(monkeypatch, name, value):
    with pytest.raises(helpers.ParameterError) as error:
        validate(monkeypatch, **{name: value})
    assert str(error.value).startswith(f"{name} = {value!r} must be")
    if name.lower() in SHIPPED_CONFIG:
        assert str(error.value).endswith(f"try {SHIPPED_CONFIG[name.lower()]!r}")


# ---------------------------------------------------------------- prompts the network cannot read

def test_a_bad_prompt_prints_its_error_and_the_others_go_on(notebook, shipped_net, capsys):
    predictions = notebook["predict_prompts"](shipped_net, ["lov", "lo", "ca\0t", "café", 3, "the"])
    printed = capsys.readouterr().out.splitlines()
    assert list(predictions) == ["lov", "the"]
    assert len(printed) == 6 and printed[0].startswith("'lov' -> 'e'") and printed[5].startswith("'the' -> ")
    for line, named in zip(printed[1:5], ["'lo'", "padding", "'é'", "3"]):  # each says what is wrong
        assert named in line


@pytest.mark.parametrize("prompts, read", [("love", ["love"]), (["lov", "the"], ["lov", "the"]), ([], [])])
def test_prompts_may_be_one_text_or_a_list(notebook, shipped_net, capsys, prompts, read):
    assert list(notebook["predict_prompts"](shipped_net, prompts)) == read  # a lone text is not read letter by letter


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
    _, _, source = storage.choose_weights("unrolled_rnn", WEIGHTS_FILE, notebook_config(HIDDEN_SIZE=64))
    printed = capsys.readouterr().out
    assert source == "shipped" and printed.count("\n") == 1
    assert "HIDDEN_SIZE = 64" in printed and "TRAIN = True" in printed


def test_the_default_parameters_use_the_shipped_weights_as_they_are(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GENMODELS_CHECKPOINT_DIR", str(tmp_path))
    _, _, source = storage.choose_weights("unrolled_rnn", WEIGHTS_FILE, notebook_config())
    assert source == "shipped"
    assert "differ" not in capsys.readouterr().out


def test_weights_of_another_shape_are_one_sentence(notebook, tmp_path):
    path, entry = storage.verified_weights(WEIGHTS_FILE)
    wrong = {**entry, "config": {**entry["config"], "hidden_size": 128}}
    with pytest.raises(helpers.ParameterError, match=r"HIDDEN_SIZE = 128.*git checkout weights/"):
        notebook["load_trained_net"](path, wrong)


# ---------------------------------------------------------------- training that goes wrong, and resuming

def tiny_run(notebook, folder, epochs, learning_rate=0.01):
    """Train a small UnrolledRNN on random windows; returns (net, record)."""
    config = dict(embedding_size=4, hidden_size=8, batch_size=32, epochs=epochs,
                  learning_rate=learning_rate, seed=3)
    windows = np.random.RandomState(0).randint(1, 20, size=(320, 4))
    helpers.seed_everything(config["seed"])
    net = notebook["UnrolledRNN"](20, 4, 8)
    net.initialize(notebook["mx"].init.Xavier())
    record = notebook["train"](net, windows[:, :3], windows[:, 3], config, folder)
    return net, record


def parameters_of(net):
    return [parameter.data().asnumpy() for parameter in net.collect_params().values()]


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(notebook, tmp_path, capsys):
    uninterrupted, whole = tiny_run(notebook, tmp_path / "whole", epochs=2)
    tiny_run(notebook, tmp_path / "interrupted", epochs=1)
    resumed, record = tiny_run(notebook, tmp_path / "interrupted", epochs=2)
    assert "resuming" in capsys.readouterr().out
    assert record["history"] == whole["history"]
    for mine, theirs in zip(parameters_of(resumed), parameters_of(uninterrupted)):
        np.testing.assert_array_equal(mine, theirs)


def test_a_checkpoint_of_other_parameters_is_never_resumed_in_silence(notebook, tmp_path):
    tiny_run(notebook, tmp_path, epochs=1, learning_rate=0.01)
    with pytest.raises(helpers.ParameterError, match=r"LEARNING_RATE = 0.01.*FRESH_START = True"):
        tiny_run(notebook, tmp_path, epochs=2, learning_rate=0.02)


def test_a_checkpoint_with_more_epochs_than_asked_is_named(notebook, tmp_path):
    tiny_run(notebook, tmp_path, epochs=2)
    with pytest.raises(helpers.ParameterError, match=r"holds 2 epochs.*EPOCHS = 1"):
        tiny_run(notebook, tmp_path, epochs=1)


def test_a_huge_learning_rate_stops_training_with_a_sentence(notebook, tmp_path):
    with pytest.raises(helpers.TrainingDiverged, match=r"LEARNING_RATE \(now 1000000.0\)"):
        tiny_run(notebook, tmp_path, epochs=1, learning_rate=1e6)
