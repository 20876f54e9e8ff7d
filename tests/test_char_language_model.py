"""Behaviour of notebook 2's own code: the model, generation, checkpoints and the shipped LSTM."""
import json
import math

import pytest

import helpers
from notebook_code import notebook_namespace

SHIPPED = helpers.read_manifest().get("char_lstm.params")
pytestmark = pytest.mark.skipif(SHIPPED is None, reason="weights/char_lstm.params has no manifest entry")


@pytest.fixture(scope="module")
def notebook():
    vocabulary = SHIPPED["vocabulary"]
    return notebook_namespace("02_char_language_model.ipynb", also=("loss_function", "device"),
                              index_to_char=vocabulary,
                              char_to_index={char: index for index, char in enumerate(vocabulary)})


@pytest.fixture(scope="module")
def shipped(notebook):
    model, _ = notebook["load_pretrained"]("char_lstm.params", notebook["index_to_char"])
    return model, notebook["CharStepper"](model)


def tiny_model(notebook, mode="lstm", vocab_size=12):
    model = notebook["GluonRNNModel"](mode, vocab_size, num_embed=4, num_hidden=8, num_layers=2, dropout=0.1)
    model.initialize(notebook["mx"].init.Xavier())
    return model


def test_unknown_mode_is_an_error_that_lists_the_valid_ones(notebook):
    with pytest.raises(ValueError, match=r"mode must be one of \['gru', 'lstm', 'rnn'\], got 'transformer'"):
        notebook["GluonRNNModel"]("transformer", 10, 4, 8, 1)


@pytest.mark.parametrize("mode, state_count", [("lstm", 2), ("gru", 1), ("rnn", 1)])
def test_every_mode_scores_every_position(notebook, mode, state_count):
    nd = notebook["nd"]
    model = tiny_model(notebook, mode)
    scores, state = model(nd.zeros((5, 3)), *model.begin_state(3))
    assert scores.shape == (5, 3, 12)
    assert len(state) == state_count and state[0].shape == (2, 3, 8)


def test_empty_priming_text_is_a_clear_error(notebook, shipped):
    with pytest.raises(ValueError, match="priming text is empty"):
        notebook["generate"](*shipped, "", 5)


def test_priming_characters_outside_the_vocabulary_are_named(notebook, shipped):
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['§', '🙂'\]"):
        notebook["generate"](*shipped, "Truth 🙂 §", 5)


def test_bad_sampling_settings_are_errors(notebook, shipped):
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        notebook["generate"](*shipped, "The ", 5, temperature=1.0, top_k=0)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        notebook["generate"](*shipped, "The ", 5, temperature=-1.0)


def test_low_temperature_and_top_1_both_equal_greedy(notebook, shipped):
    generate = notebook["generate"]
    greedy = generate(*shipped, "The will to ", 60, temperature=0)
    assert generate(*shipped, "The will to ", 60, temperature=1e-3, top_k=None, seed=3) == greedy
    assert generate(*shipped, "The will to ", 60, temperature=1.0, top_k=1, seed=4) == greedy


def test_a_fixed_seed_reproduces_the_text_and_another_seed_does_not(notebook, shipped):
    generate = notebook["generate"]
    first = generate(*shipped, "The will to ", 80, temperature=1.0, top_k=None, seed=11)
    assert generate(*shipped, "The will to ", 80, temperature=1.0, top_k=None, seed=11) == first
    assert generate(*shipped, "The will to ", 80, temperature=1.0, top_k=None, seed=12) != first


def test_carried_state_writes_what_the_sliding_window_writes(notebook, shipped):
    prompt = "Supposing that Truth is a woman--what then?"
    stateful = notebook["generate"](*shipped, prompt, 30, temperature=0)
    windowed = notebook["generate_like_original"](shipped[0], prompt, 30, window=len(prompt) + 30)
    assert stateful == windowed


def test_training_resumes_from_a_checkpoint(notebook, tmp_path, capsys):
    nd, mx = notebook["nd"], notebook["mx"]
    notebook.update(SEQ_LENGTH=10, BATCH_SIZE=4)
    data = nd.array(mx.nd.random.randint(0, 12, shape=(81, 4)).asnumpy())
    model = tiny_model(notebook)
    first = notebook["fit"](model, data, data, 1, tmp_path)
    assert (tmp_path / "last.params").exists() and (tmp_path / "best.params").exists()
    resumed = notebook["fit"](tiny_model(notebook), data, data, 2, tmp_path)
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert len(resumed["train"]) == 2 and resumed["train"][0] == first["train"][0]
    assert json.loads((tmp_path / "progress.json").read_text()) == resumed


def ship_tiny_weights(notebook, folder, monkeypatch, **config):
    """A tiny LSTM saved as weights/tiny.params in `folder`, its manifest entry claiming `config`."""
    monkeypatch.setattr(helpers, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(helpers, "MANIFEST", folder / "manifest.json")
    tiny_model(notebook, vocab_size=12).save_parameters(str(folder / "tiny.params"))
    helpers.record_weights("tiny.params", vocabulary=list("abcdefghijkl"), config=config)


def test_weights_for_another_vocabulary_are_refused(notebook, tmp_path, monkeypatch):
    config = dict(mode="lstm", num_embed=4, num_hidden=8, num_layers=2, dropout=0.1)
    ship_tiny_weights(notebook, tmp_path, monkeypatch, **config)
    with pytest.raises(ValueError, match="vocabulary of 12 characters that differs from this text's 3"):
        notebook["load_pretrained"]("tiny.params", ["\0", "a", "b"])
    assert notebook["load_pretrained"]("tiny.params", list("abcdefghijkl"))[1]["config"] == config


def test_weights_for_another_architecture_are_refused(notebook, tmp_path, monkeypatch):
    ship_tiny_weights(notebook, tmp_path, monkeypatch, mode="gru", num_embed=4, num_hidden=16,
                      num_layers=2, dropout=0.1)
    with pytest.raises(ValueError, match="does not fit the architecture"):
        notebook["load_pretrained"]("tiny.params", list("abcdefghijkl"))


def test_shipped_lstm_reaches_the_target_on_the_validation_split(notebook, shipped):
    try:
        text = helpers.read_text(helpers.nietzsche_path(download=False))
    except FileNotFoundError:
        pytest.skip("the Nietzsche text is not available (set GENMODELS_DATA_DIR)")
    config = SHIPPED["config"]
    _, valid = helpers.split_by_position(helpers.encode(text, notebook["char_to_index"]), 0.1)
    valid_data = helpers.batchify(valid, config["batch_size"])
    loss = notebook["evaluate"](shipped[0], valid_data, config["seq_length"], config["batch_size"])
    assert loss <= 1.30, f"validation loss {loss:.4f} nats ({loss / math.log(2):.3f} bits per character)"
    assert loss == pytest.approx(SHIPPED["valid_loss_nats"], abs=1e-3)
