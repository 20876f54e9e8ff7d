"""Behaviour of notebook 2's own code: parameters, the model, training, generation and the shipped LSTM."""
import json
import math

import numpy as np
import pytest

import helpers

import panels

import storage
import mxnet as mx  # after helpers, which sets the thread count
from notebook_code import notebook_namespace

NOTEBOOK = "02_char_language_model.ipynb"
SHIPPED = storage.read_manifest().get("char_lstm.params")
COMPARISON_LOG = helpers.REPO_ROOT / "experiments" / "logs" / "char_layer_comparison.json"
pytestmark = pytest.mark.skipif(SHIPPED is None, reason="weights/char_lstm.params has no manifest entry")


def load_notebook(**parameters):
    """The notebook's definitions, with the shipped vocabulary and any parameter values given."""
    vocabulary = SHIPPED["vocabulary"]
    given = dict(index_to_char=vocabulary, vocab_size=len(vocabulary),
                 char_to_index={char: index for index, char in enumerate(vocabulary)})
    return notebook_namespace(NOTEBOOK, also=("loss_function", "device"), **{**given, **parameters})


@pytest.fixture(scope="module")
def notebook():
    return load_notebook()


@pytest.fixture(scope="module")
def shipped(notebook):
    model, _ = notebook["load_pretrained"]("char_lstm.params", notebook["index_to_char"])
    return model, notebook["CharStepper"](model)


def tiny_model(notebook, mode="lstm", vocab_size=12):
    model = notebook["GluonRNNModel"](mode, vocab_size, num_embed=4, num_hidden=8, num_layers=2, dropout=0.1)
    model.initialize(notebook["mx"].init.Xavier())
    return model


# ---------------------------------------------------------------- the validation cell

def check_message(**parameters):
    """The ParameterError message of the check cell for these parameter values, or None."""
    notebook = load_notebook(**parameters)
    try:
        notebook["check_settings"](notebook, SHIPPED["vocabulary"])
    except helpers.ParameterError as error:
        return str(error)
    return None


def test_the_default_parameters_pass():
    assert check_message() is None


@pytest.mark.parametrize("parameters", [
    {"SEQ_LENGTH": 0}, {"BATCH_SIZE": -1}, {"BATCH_SIZE": 40_000}, {"EPOCHS": 2.5}, {"COMPARE_EPOCHS": 0},
    {"GENERATE_LENGTH": 0}, {"GENERATE_LENGTH": 100_001}, {"NUM_HIDDEN": 0}, {"TOP_K": 87}, {"TOP_K": 0},
    {"PRIMING_TEXT": ""}, {"PRIMING_TEXT": 5}, {"MODE": "transformer"}, {"TEMPERATURE": -1},
    {"TEMPERATURE": float("nan")}, {"LEARNING_RATE": 0}, {"CLIP": float("nan")}, {"DROPOUT": 1.0},
    {"WEIGHT_DROP": "0.3"}, {"VALID_FRACTION": 0.0}, {"TRAIN": "yes"}, {"FRESH_START": 1}, {"COMPARE": 1},
])
def test_each_bad_parameter_gets_one_sentence_naming_it(parameters):
    message = check_message(**parameters)
    (name, value), = parameters.items()
    assert message is not None and message.startswith(f"{name} = {value!r}") and "\n" not in message, message


@pytest.mark.parametrize("name, bad", [("SEQ_LENGTH", 0), ("BATCH_SIZE", 0), ("EPOCHS", 0), ("NUM_HIDDEN", 0),
                                       ("LEARNING_RATE", 0), ("DROPOUT", 1.0), ("MODE", "transformer")])
def test_the_value_to_try_is_the_shipped_runs(name, bad):
    assert check_message(**{name: bad}).endswith(f"try {SHIPPED['config'][name.lower()]!r}")


@pytest.mark.parametrize("priming_text, unknown", [("Zarathustra 🙂", "'🙂'"), ("pad\0", "'\\x00'")])
def test_a_priming_text_with_characters_the_text_lacks_is_refused_naming_them(priming_text, unknown):
    message = check_message(PRIMING_TEXT=priming_text)
    assert message.startswith("PRIMING_TEXT = ") and unknown in message


def test_the_window_must_fit_the_validation_split():
    message = check_message(SEQ_LENGTH=1000, BATCH_SIZE=64)  # 60,090 characters in 64 columns: 937 steps
    assert message.startswith("SEQ_LENGTH = 1000") and "SEQ_LENGTH <= 937" in message
    assert check_message(SEQ_LENGTH=937, BATCH_SIZE=64) is None and check_message(TOP_K=86, TEMPERATURE=0) is None


# ---------------------------------------------------------------- without the text

@pytest.mark.parametrize("damage", [b"", b"\x89PNG\r\n\x1a\n\x00\xff", b"Another book entirely.\n" * 100],
                         ids=["empty", "binary", "another text"])
def test_a_damaged_text_is_named_once_and_the_cells_that_need_it_step_aside(damage, tmp_path, monkeypatch, capsys):
    (tmp_path / "nietzsche.txt").write_bytes(damage)
    monkeypatch.setenv(helpers.DATA_ENV_VAR, str(tmp_path))
    notebook = load_notebook(shipped_vocabulary=SHIPPED["vocabulary"])
    cells = json.loads((helpers.REPO_ROOT / "notebooks" / NOTEBOOK).read_text())["cells"]
    needing_text = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code" and
                    any(mark in "".join(cell["source"]) for mark in ("nietzsche_path()", "{text_missing}"))]
    for source in needing_text:  # the reading cell, then every cell that says it skipped
        exec(compile(source, NOTEBOOK, "exec"), notebook)
    printed = capsys.readouterr().out
    assert notebook["have_text"] is False and notebook["index_to_char"] == SHIPPED["vocabulary"]
    assert len(needing_text) >= 5 and printed.count(notebook["text_problem"]) == 1


# ---------------------------------------------------------------- the model

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


def test_describe_loss_gives_nats_bits_and_perplexity(notebook):
    assert notebook["describe_loss"](math.log(86)) == "4.454 nats = 6.426 bits per character, perplexity 86.00"


def test_log_probabilities_sum_to_the_texts_log_probability(notebook, shipped):
    log_probs = notebook["log_probabilities"](shipped[0], "The will to power")
    assert log_probs.shape == (16,) and (log_probs < 0).all()
    damaged = notebook["log_probabilities"](shipped[0], "Teh wlil to pwoer")
    assert log_probs.sum() > damaged.sum() + 10  # each misspelling costs the text probability


# ---------------------------------------------------------------- generation

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


def test_the_picker_draws_only_from_the_top_k_in_proportion_to_their_probabilities(notebook):
    mx.random.seed(5)
    scores = mx.nd.array([[0.0, math.log(3.0), -4.0, -9.0]])  # softmax of the top 2: 1/4 and 3/4
    pick_next = notebook["make_picker"](1.0, 2)
    draws = np.array([pick_next(scores).asscalar() for _ in range(2000)])
    assert set(draws) == {0.0, 1.0}
    assert abs((draws == 1.0).mean() - 0.75) < 0.03  # 0.03 is three standard deviations of 2,000 draws
    assert notebook["make_picker"](0, None)(scores).asnumpy().tolist() == [1.0]


def test_zero_length_and_a_top_k_of_the_whole_vocabulary_work(notebook, shipped):
    assert notebook["generate"](*shipped, "The ", 0) == "The "
    assert len(notebook["generate"](*shipped, "The ", 12, temperature=1.0, top_k=500)) == 16


def test_tiny_temperatures_and_top_1_all_write_the_greedy_text(notebook, shipped):
    generate = notebook["generate"]
    greedy = generate(*shipped, "The will to ", 60, temperature=0)
    for tiny in (1e-3, 1e-30, 5e-324):  # 1e-30 and the smallest float overflow float32 when divided by
        assert generate(*shipped, "The will to ", 60, temperature=tiny, top_k=None, seed=3) == greedy
    assert generate(*shipped, "The will to ", 60, temperature=1.0, top_k=1, seed=4) == greedy


def test_long_generations_show_progress_and_short_ones_do_not(notebook, capsys):
    model = tiny_model(notebook, vocab_size=len(notebook["index_to_char"]))
    model.hybridize()
    stepper = notebook["CharStepper"](model)
    assert len(notebook["generate"](model, stepper, "The ", 2_001, temperature=1.0)) == 2_005
    assert "writing" in capsys.readouterr().err
    notebook["generate"](model, stepper, "The ", 2_000, temperature=1.0)
    assert "writing" not in capsys.readouterr().err


def test_the_writing_panel_writes_a_new_text_per_press_and_refuses_unknown_characters(capsys):
    written = []

    def write(prime, temperature, top_k, length, seed):
        written.append((prime, temperature, top_k, length, seed))
        return f"{prime}, seed {seed}"

    def check(prime):
        if "🙂" in prime:
            raise ValueError("characters not in the vocabulary: ['🙂']")

    panel = panels.writing_panel(write, check, prime="The", temperature=0.5, top_k=10, length=40, seed=7,
                                  largest_top_k=86)
    assert "The, seed 7" in capsys.readouterr().out  # the text a viewer without a kernel sees
    box, refusal, sliders, _, button, output = panel.children
    assert button.description == "Write" and output.outputs == ()
    button.click()
    first = output.outputs
    button.click()
    assert first and output.outputs != first and written[-1] == ("The", 0.5, 10, 40, 9)
    sliders.children[1].value = 86  # top-k at its largest: all characters
    button.click()
    assert written[-1][2] is None
    box.value = "Truth 🙂"
    assert "🙂" in refusal.value and "\n" not in refusal.value
    presses = len(written)
    button.click()
    assert len(written) == presses  # refused: nothing written
    box.value = "Truth"
    assert refusal.value == ""


def test_a_fixed_seed_reproduces_the_text_and_another_seed_does_not(notebook, shipped):
    generate = notebook["generate"]
    first = generate(*shipped, "The will to ", 80, temperature=1.0, top_k=None, seed=11)
    assert generate(*shipped, "The will to ", 80, temperature=1.0, top_k=None, seed=11) == first
    assert generate(*shipped, "The will to ", 80, temperature=1.0, top_k=None, seed=12) != first


def test_streams_write_separate_texts_side_by_side(notebook, shipped):
    generate = notebook["generate"]
    texts = generate(*shipped, "The will to ", 40, temperature=1.0, top_k=None, seed=5, streams=3)
    assert isinstance(texts, list) and len(texts) == 3
    assert all(text.startswith("The will to ") and len(text) == len("The will to ") + 40 for text in texts)
    assert len(set(texts)) == 3  # each column draws its own characters
    assert generate(*shipped, "The will to ", 40, temperature=1.0, top_k=None, seed=5, streams=3) == texts
    greedy = generate(*shipped, "The will to ", 40, temperature=0)  # no draws: every column is the greedy text
    assert generate(*shipped, "The will to ", 40, temperature=0, streams=2) == [greedy, greedy]
    assert generate(*shipped, "The ", 0, streams=2) == ["The ", "The "]


def test_carried_state_writes_what_the_sliding_window_writes(notebook, shipped):
    prompt = "Supposing that Truth is a woman--what then?"
    stateful = notebook["generate"](*shipped, prompt, 30, temperature=0)
    windowed = notebook["generate_like_original"](shipped[0], prompt, 30, window=len(prompt) + 30)
    assert stateful == windowed


def test_quotes_and_brackets_are_counted_per_paragraph(notebook):
    counts = notebook["quote_and_bracket_counts"]('He said "yes (and no)".\n\n"Open (and (shut)\n\nclose) " x"')
    assert counts == {"paragraphs": 3, '"': 5, 'odd " paragraphs': 1, "(": 3, "unclosed (": 1, "unopened )": 1}


# ---------------------------------------------------------------- training, checkpoints, divergence

def tiny_data(notebook, rows=81, columns=4, seed=0):
    notebook["mx"].random.seed(seed)
    return notebook["nd"].array(notebook["mx"].nd.random.randint(1, 12, shape=(rows, columns)).asnumpy())


def tiny_training(tmp_path, **parameters):
    notebook = load_notebook(SEQ_LENGTH=10, BATCH_SIZE=4, vocab_size=12, **parameters)
    return notebook, tiny_data(notebook), {"mode": "lstm", "sizes": "tiny"}


def lever_fit(notebook, **levers):
    """experiments/char_lm_runs.py's fit_with_levers on the notebook, and the config naming its levers."""
    import char_lm_runs
    config = {"mode": "lstm", "sizes": "tiny", **notebook["LEVERS_OFF"], **levers}
    return (lambda *args, **kwargs: char_lm_runs.fit_with_levers(notebook, *args, **kwargs)), config


@pytest.mark.parametrize("with_levers", [False, True])
def test_an_interrupted_run_resumes_and_ends_like_an_uninterrupted_one(tmp_path, capsys, with_levers):
    notebook, data, config = tiny_training(tmp_path)
    fit = notebook["fit"]
    if with_levers:  # offsets and averaging resume too
        fit, config = lever_fit(notebook, random_offset=True, average_last=3)
    helpers.seed_everything(1)
    fit(tiny_model(notebook), data, data, 3, tmp_path / "a", config, stop_after=1)
    assert len(storage.latest_epoch(tmp_path / "a")[1]["train"]) == 1
    resumed = fit(tiny_model(notebook), data, data, 3, tmp_path / "a", config)  # a new kernel: fresh weights, replaced
    assert "resuming after epoch 1" in capsys.readouterr().out
    helpers.seed_everything(1)
    straight = fit(tiny_model(notebook), data, data, 3, tmp_path / "b", config)
    assert resumed["train"] == straight["train"] and resumed["valid"] == straight["valid"]
    assert resumed["best_epoch"] == int(min(range(3), key=lambda epoch: straight["valid"][epoch])) + 1
    if with_levers:
        assert len(resumed["valid_average"]) == 3 and resumed["valid_average"] == straight["valid_average"]


def test_random_offsets_move_every_window_of_an_epoch_by_one_draw_below_seq_length(tmp_path, monkeypatch):
    starts, get_batch = [], helpers.get_batch

    def recording_get_batch(data, start, seq_length):
        starts.append(start)
        return get_batch(data, start, seq_length)

    monkeypatch.setattr(helpers, "get_batch", recording_get_batch)
    seen = {}
    for random_offset in (False, True):
        notebook, data, _ = tiny_training(tmp_path)  # 81 rows, windows of 10
        fit, config = lever_fit(notebook, random_offset=random_offset)
        starts.clear()
        notebook["evaluate"] = lambda *args: 1.0  # only the training windows are recorded
        fit(tiny_model(notebook), data, data, 4, tmp_path / str(random_offset), config)
        seen[random_offset] = list(starts)
    assert seen[False] == list(range(0, 80, 10)) * 4
    offsets = [start for start in seen[True] if start < 10]  # each epoch's first window
    assert len(offsets) == 4 and len(set(offsets)) > 1, offsets
    assert all(start + 10 + 1 <= 81 for start in seen[True])  # every target inside the data
    assert len(seen[True]) == 4 * 8 - sum(offset > 0 for offset in offsets)  # one window fewer after a shift


def test_the_running_mean_averages_the_weights_and_the_swap_puts_them_back(notebook):
    import char_lm_runs
    model = tiny_model(notebook)
    parameters = list(model.collect_params().values())
    own = [parameter.data().asnumpy() for parameter in parameters]
    sets, average = [], None
    for count in range(1, 4):
        for parameter in parameters:
            parameter.set_data(notebook["nd"].random.normal(shape=parameter.shape))
        sets.append([parameter.data().asnumpy() for parameter in parameters])
        average = char_lm_runs.running_mean(average, model, count)
    for parameter, weights in zip(parameters, own):
        parameter.set_data(notebook["nd"].array(weights))
    with pytest.raises(RuntimeError):
        with char_lm_runs.weights_swapped(model, average):
            for parameter, *values in zip(parameters, *sets):
                np.testing.assert_allclose(parameter.data().asnumpy(), np.mean(values, axis=0), rtol=1e-5, atol=1e-6)
            raise RuntimeError("an error inside the block")
    for parameter, weights in zip(parameters, own):
        np.testing.assert_array_equal(parameter.data().asnumpy(), weights)


def test_averaging_the_last_epochs_keeps_and_scores_the_mean_of_their_weights(tmp_path):
    notebook, data, _ = tiny_training(tmp_path)
    fit, config = lever_fit(notebook, average_last=2)
    helpers.seed_everything(1)
    history = fit(tiny_model(notebook), data, data, 3, tmp_path, config)
    epoch_weights = []
    for epoch in (2, 3):
        model = tiny_model(notebook)
        model.load_parameters(str(tmp_path / f"epoch-{epoch:04d}" / "model.params"))
        epoch_weights.append([parameter.data().asnumpy() for parameter in model.collect_params().values()])
    average = notebook["nd"].load(str(tmp_path / "epoch-0003" / "average.params"))
    for mean, second, third in zip(average, *epoch_weights):
        np.testing.assert_allclose(mean.asnumpy(), (second + third) / 2, rtol=1e-5, atol=1e-6)
    assert len(history["valid_average"]) == 2 and all(math.isfinite(loss) for loss in history["valid_average"])


def test_weight_decay_pulls_the_weights_towards_zero(tmp_path):
    norms = {}
    for weight_decay in (0.0, 0.05):
        notebook, data, _ = tiny_training(tmp_path)
        fit, config = lever_fit(notebook, weight_decay=weight_decay)
        helpers.seed_everything(1)
        model = tiny_model(notebook)
        fit(model, data, data, 2, tmp_path / str(weight_decay), config)
        norms[weight_decay] = sum(float((p.data() ** 2).sum().asscalar()) for p in model.collect_params().values())
    assert norms[0.05] < 0.9 * norms[0.0], norms


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn"])
def test_weight_drop_masks_the_recurrent_weights_in_training_only(notebook, mode):
    inputs = notebook["nd"].array(np.arange(24).reshape(6, 4) % 12)
    outputs = {}
    for weight_drop in (0.0, 0.5):
        helpers.seed_everything(3)
        model = notebook["GluonRNNModel"](mode, 12, num_embed=4, num_hidden=8, num_layers=2, dropout=0.0,
                                          weight_drop=weight_drop)
        model.initialize(notebook["mx"].init.Xavier())
        model.hybridize(static_alloc=True, static_shape=True)
        state = model.begin_state(4)
        predicted = [model(inputs, *state)[0].asnumpy() for _ in range(2)]
        with notebook["autograd"].train_mode():
            trained = [model(inputs, *state)[0].asnumpy() for _ in range(2)]
        outputs[weight_drop] = predicted, trained
    (predicted_plain, trained_plain), (predicted_dropped, trained_dropped) = outputs[0.0], outputs[0.5]
    assert np.array_equal(predicted_dropped[0], predicted_dropped[1])  # no mask when predicting
    assert np.allclose(predicted_dropped[0], predicted_plain[0])        # same weights, same scores
    assert np.array_equal(trained_plain[0], trained_plain[1])           # no dropout at all: nothing random
    assert not np.allclose(trained_dropped[0], trained_dropped[1])      # a new mask per call


def test_locked_dropout_keeps_one_mask_per_column_for_every_step(notebook):
    import char_lm_runs
    ones = notebook["nd"].ones((6, 4, 16))  # (steps, batch, features), as the embeddings and the decoder input
    for locked in (False, True):
        helpers.seed_everything(3)
        model = char_lm_runs.lever_model_class(notebook)("lstm", 12, num_embed=16, num_hidden=8, num_layers=1, dropout=0.5,
                                          locked_dropout=locked)
        with notebook["autograd"].train_mode():
            kept = model.drop(ones).asnumpy() != 0
        same_at_every_step = (kept == kept[:1]).all()
        assert same_at_every_step == locked
        assert not (kept[0] == kept[0, :1]).all()  # the columns draw masks of their own either way
        assert 0.3 < kept.mean() < 0.7
        assert np.array_equal(model.drop(ones).asnumpy(), ones.asnumpy())  # predicting: no mask


def test_embedding_dropout_drops_whole_characters_for_a_batch_and_nothing_when_predicting(notebook):
    import char_lm_runs
    nd, autograd = notebook["nd"], notebook["autograd"]
    inputs = nd.array(np.arange(12 * 10).reshape(12, 10) % 40)  # all 40 characters, three times each
    outputs = {}
    for rate in (0.0, 0.5):
        helpers.seed_everything(5)
        model = char_lm_runs.lever_model_class(notebook)("lstm", 40, num_embed=8, num_hidden=8, num_layers=1, dropout=0.0,
                                          embed_dropout=rate)
        model.initialize()
        outputs[rate] = model(inputs, *model.begin_state(10))[0].asnumpy()
        with autograd.record():
            loss = model(inputs, *model.begin_state(10))[0].sum()
        loss.backward()
        learning = (model.encoder.weight.grad().asnumpy() != 0).any(axis=1)  # a dropped character learns nothing
        assert learning.all() if rate == 0 else 8 < learning.sum() < 32
    assert np.array_equal(outputs[0.0], outputs[0.5])  # predicting: every character kept, no rescaling


def test_a_stopped_runs_checkpoints_go_into_the_runs_log_with_their_curve(tmp_path, monkeypatch):
    import char_lm_runs
    notebook, data, _ = tiny_training(tmp_path)
    helpers.seed_everything(1)
    notebook["fit"](tiny_model(notebook), data, data, 3, tmp_path / "run", {"num_layers": 2, "epochs": 3},
                    stop_after=2)
    monkeypatch.setattr(char_lm_runs, "LOG", tmp_path / "runs.json")
    monkeypatch.setattr("sys.argv", ["char_lm_runs.py", "--name", "tiny", "--note", "stopped",
                                     "--record-checkpoints", str(tmp_path / "run")])
    char_lm_runs.main()
    run = json.loads((tmp_path / "runs.json").read_text())["tiny"]
    assert run["stopped_after"] == len(run["valid"]) == 2 and run["note"] == "stopped"
    assert run["best_valid_nats"] == min(run["valid"]) and run["command"].startswith("make train")


def test_a_checkpoint_of_other_parameters_is_not_resumed(tmp_path):
    notebook, data, config = tiny_training(tmp_path)
    notebook["fit"](tiny_model(notebook), data, data, 2, tmp_path, config, stop_after=1)
    with pytest.raises(helpers.ParameterError, match="holds a run with other parameters .* FRESH_START = True"):
        notebook["fit"](tiny_model(notebook), data, data, 2, tmp_path, {**config, "sizes": "other"})


def test_a_non_finite_loss_stops_training_naming_learning_rate_and_clip(tmp_path):
    notebook, data, config = tiny_training(tmp_path)
    model = tiny_model(notebook)
    model.decoder.weight.set_data(model.decoder.weight.data() * float("nan"))
    with pytest.raises(helpers.ParameterError) as stopped:
        notebook["fit"](model, data, data, 2, tmp_path, config)
    assert "the training loss reached nan nats per character" in str(stopped.value)
    assert "lower LEARNING_RATE (now 0.002) or CLIP (now 1.0)" in str(stopped.value)
    assert storage.latest_epoch(tmp_path) is None  # nothing of the diverged run is kept


def test_an_exploding_loss_stops_training():
    notebook = load_notebook()
    with pytest.raises(helpers.ParameterError, match=r"reached 1\.7e\+11 nats per character .* LEARNING_RATE"):
        notebook["stop_if_diverged"](1.7e11, 86)
    notebook["stop_if_diverged"](4.5, 86)  # an untrained model's loss is not an explosion


def test_the_comparison_trains_each_mode_and_records_a_divergence(tmp_path):
    notebook, data, _ = tiny_training(tmp_path)
    sizes = dict(vocab_size=12, num_embed=4, num_hidden=8, num_layers=1, dropout=0.0)
    results = notebook["compare_layers"](("lstm", "rnn"), sizes, data, data, 2, 5)
    assert set(results) == {"lstm", "rnn"}
    assert all(len(curve["valid"]) == 2 and "stopped" not in curve for curve in results.values())
    notebook["LEARNING_RATE"] = 1e9
    exploded = notebook["compare_layers"](("rnn",), sizes, data, data, 2, 5)["rnn"]
    assert exploded["stopped"].startswith("epoch 1: the training loss reached") and exploded["valid"] == []


# ---------------------------------------------------------------- which weights, and what a parameter changes

def test_a_mode_the_shipped_weights_do_not_have_is_named_when_they_are_used(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENMODELS_CHECKPOINT_DIR", str(tmp_path))
    notebook = load_notebook(MODE="gru", NUM_HIDDEN=256)
    _, entry, source = storage.choose_weights("char_lm", "char_lstm.params", notebook["run_config"]())
    line = capsys.readouterr().out
    assert source == "shipped" and entry["config"]["mode"] == "lstm"
    assert "MODE = 'gru'" in line and "NUM_HIDDEN = 256" in line and "set TRAIN = True" in line


def test_default_parameters_match_the_shipped_config():
    assert load_notebook()["run_config"]() == SHIPPED["config"]


def test_the_readers_temperature_is_among_those_shown():
    source = json.loads((helpers.REPO_ROOT / "notebooks" / NOTEBOOK).read_text())["cells"]
    cell = next("".join(c["source"]) for c in source if "temperatures = " in "".join(c["source"]))
    assert "temperatures = sorted({0.2, 0.5, 1.0, TEMPERATURE})" in cell


def test_the_comparison_log_says_how_it_was_made_and_covers_three_modes():
    log = json.loads(COMPARISON_LOG.read_text())
    assert log["command"].split()[1:3] == ["python", "experiments/compare_char_layers.py"]
    assert set(log["results"]) == {"lstm", "gru", "rnn"}
    assert type(log["config"]["schedule_epochs"]) is int
    for curve in log["results"].values():
        assert len(curve["valid"]) == log["config"]["epochs"] or "stopped" in curve
        assert all(math.isfinite(loss) for loss in curve["valid"])


def test_the_notebook_names_every_setting_in_which_the_comparison_log_differs():
    log = json.loads(COMPARISON_LOG.read_text())
    cells = json.loads((helpers.REPO_ROOT / "notebooks" / NOTEBOOK).read_text())["cells"]
    cell = next(c for c in cells if "COMPARISON_LOG = helpers" in "".join(c["source"]))
    printed = "".join("".join(output.get("text", "")) for output in cell["outputs"])
    if log["config"]["schedule_epochs"] != SHIPPED["config"]["epochs"]:
        assert f"EPOCHS = {SHIPPED['config']['epochs']} (log: {log['config']['schedule_epochs']})" in printed
    assert "SCHEDULE_EPOCHS" not in printed  # not a parameter: the schedule's length is EPOCHS
    for key in ("num_embed", "num_hidden", "num_layers", "dropout", "weight_drop", "seq_length", "batch_size",
                "learning_rate", "clip", "seed"):
        if log["config"][key] != SHIPPED["config"][key]:
            assert f"{key.upper()} = {SHIPPED['config'][key]} (log: {log['config'][key]})" in printed


def test_the_runs_log_holds_the_shipped_run_and_how_each_was_made():
    runs = json.loads((helpers.REPO_ROOT / "experiments" / "logs" / "char_lm_runs.json").read_text())
    shipped = [run for run in runs.values() if run.get("weights_sha256") == SHIPPED["sha256"]]
    assert len(shipped) == 1 and shipped[0]["best_valid_nats"] == SHIPPED["valid_loss_nats"]
    for run in runs.values():
        assert run["command"] and len(run["valid"]) <= run["config"]["epochs"]
        assert run["best_valid_nats"] == min(run["valid"]) == run["valid"][run["best_epoch"] - 1]


# ---------------------------------------------------------------- the shipped weights

def ship_tiny_weights(notebook, folder, monkeypatch, **config):
    """A tiny LSTM saved as weights/tiny.params in `folder`, its manifest entry claiming `config`."""
    monkeypatch.setattr(storage, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(storage, "MANIFEST", folder / "manifest.json")
    tiny_model(notebook, vocab_size=12).save_parameters(str(folder / "tiny.params"))
    storage.write_json(folder / "manifest.json", {"tiny.params": {
        "vocabulary": list("abcdefghijkl"), "config": config, "sha256": storage.sha256_of(folder / "tiny.params")}})


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
    text = helpers.read_text(storage.nietzsche_path())  # conftest skips this test without the text
    config = SHIPPED["config"]
    _, valid = helpers.split_by_position(helpers.encode(text, notebook["char_to_index"]), 0.1)
    valid_data = helpers.batchify(valid, config["batch_size"])
    loss = notebook["evaluate"](shipped[0], valid_data, config["seq_length"], config["batch_size"])
    assert loss <= 1.27, f"validation loss {loss:.4f} nats ({loss / math.log(2):.3f} bits per character)"
    assert loss == pytest.approx(SHIPPED["valid_loss_nats"], abs=1e-3)
