"""Tests of notebooks/helpers.py: MXNet's set-up on import, the parameter checks, text and images as
arrays, and finding the data (storage.nietzsche_path, storage.faces_folder). Images are synthetic,
made here; the real data is read only where a test says so (skipped without it).
"""
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import helpers  # first: it sets the thread count and engine before mxnet is imported
import storage

import cv2
import matplotlib
import mxnet as mx
import numpy as np
import pytest

matplotlib.use("Agg")

REAL_DATA_DIR = os.environ.get(helpers.DATA_ENV_VAR)  # read before any test changes it
NOTEBOOKS = Path(helpers.__file__).resolve().parent


@pytest.fixture(autouse=True)
def fake_repo(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    monkeypatch.setattr(helpers, "REPO_ROOT", repo)
    monkeypatch.delenv(helpers.DATA_ENV_VAR, raising=False)
    return repo


def write_image(path, bgr=(0, 0, 255), height=64, width=64, channels=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, channels), bgr, np.uint8))
    return path


# ---------------------------------------------------------------- set-up on import

def run_python(code, cwd, **environment):
    env = {key: value for key, value in os.environ.items()
           if key not in ("MXNET_ENGINE_TYPE", "GENMODELS_MXNET_DEFAULT_ENGINE", "JPY_SESSION_NAME", "OMP_NUM_THREADS")}
    return subprocess.run([sys.executable, "-c", code], env={**env, **environment}, capture_output=True,
                          text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("environment, engine", [({}, "NaiveEngine"), ({"GENMODELS_MXNET_DEFAULT_ENGINE": "1"}, "None"),
                                                 ({"MXNET_ENGINE_TYPE": "ThreadedEngine"}, "ThreadedEngine")])
def test_the_engine_is_the_synchronous_one_unless_asked_otherwise_and_starts_silently(environment, engine):
    result = run_python("import os, helpers, mxnet; mxnet.nd.ones(1).asnumpy(); "
                        "print(os.environ.get('MXNET_ENGINE_TYPE'))", NOTEBOOKS, **environment)
    assert result.stdout.split() == [engine] and "start using engine" not in result.stderr


def test_the_thread_count_is_the_cores_unless_set_and_a_late_import_is_said():
    result = run_python("import mxnet, os, helpers; print(os.environ['OMP_NUM_THREADS'])", NOTEBOOKS)
    assert result.stdout.split() == [str(helpers.cpu_cores())] and "mxnet was imported first" in result.stderr
    result = run_python("import os, helpers; print(os.environ['OMP_NUM_THREADS'])", NOTEBOOKS, OMP_NUM_THREADS="1")
    assert result.stdout.split() == ["1"] and result.stderr == ""


def test_a_notebook_of_another_checkout_is_refused_in_one_line(tmp_path):
    other = tmp_path / "other-clone" / "notebooks"
    other.mkdir(parents=True)
    (other / "helpers.py").write_text("# another checkout's helpers\n")
    code = f"import sys; sys.path.insert(1, {str(NOTEBOOKS)!r}); import helpers"  # as a .pth would
    result = run_python(code, other)
    assert result.returncode == 0  # the kernel's folder comes first on sys.path: its own helpers
    result = run_python(code, tmp_path, JPY_SESSION_NAME=str(other / "01.ipynb"))
    assert "WrongCheckout" in result.stderr and str(other) in result.stderr
    assert run_python(code, tmp_path).returncode == 0  # no notebook named: this checkout, as installed


# ---------------------------------------------------------------- parameters

def test_check_parameters_names_the_parameter_and_the_shipped_value():
    rules = {"EPOCHS": (int, 1, 30), "MODE": {"lstm", "gru"}, "TRAIN": bool, "COUNT": (int, 1, None, "or None"),
             "RATE": (float, 0, 1)}
    good = {"EPOCHS": 3, "MODE": "gru", "TRAIN": False, "COUNT": None, "RATE": 0.5}
    helpers.check_parameters(good, rules, shipped={"epochs": 21})
    for name, bad in (("EPOCHS", 0), ("EPOCHS", 2.5), ("MODE", "lsmt"), ("TRAIN", "no"), ("COUNT", 0),
                      ("RATE", float("nan"))):
        with pytest.raises(helpers.ParameterError) as error:
            helpers.check_parameters({**good, name: bad}, rules, shipped={"epochs": 21})
        assert str(error.value).startswith(f"{name} = {bad!r}")
        assert ("21" in str(error.value)) == (name == "EPOCHS")


def test_a_parameter_error_shows_as_one_line_in_ipython():
    assert helpers.ParameterError("X = 1 must be 2")._render_traceback_() == ["ParameterError: X = 1 must be 2"]


def test_the_smoke_switch_is_parsed_strictly_and_sets_the_small_values(monkeypatch):
    values = {"EPOCHS": 21}
    monkeypatch.setenv(helpers.SMOKE_ENV_VAR, "off")
    helpers.apply_smoke(values, EPOCHS=1)
    assert values == {"EPOCHS": 21}
    monkeypatch.setenv(helpers.SMOKE_ENV_VAR, "Yes")
    helpers.apply_smoke(values, EPOCHS=1)
    assert values == {"EPOCHS": 1}
    monkeypatch.setenv(helpers.SMOKE_ENV_VAR, "ture")
    with pytest.raises(helpers.ParameterError, match=helpers.SMOKE_ENV_VAR):
        helpers.smoke_test()


def test_check_loss_stops_a_loss_that_is_not_finite_or_explodes_naming_the_knobs():
    assert helpers.check_loss(np.float32(2.5), "epoch 1") == 2.5
    with pytest.raises(helpers.TrainingDiverged, match="LEARNING_RATE"):
        helpers.check_loss(float("nan"), "epoch 2", LEARNING_RATE=1e6)
    with pytest.raises(helpers.TrainingDiverged, match="epoch 3"):
        helpers.check_loss(187757.0, "epoch 3", explode_above=44.5)


def test_seed_everything_repeats_python_numpy_and_mxnet_draws():
    import random

    def draws():
        return random.random(), np.random.rand(), mx.nd.random.uniform(shape=1).asscalar()
    helpers.seed_everything(3)
    first = draws()
    helpers.seed_everything(3)
    assert draws() == first


# ---------------------------------------------------------------- text

def test_vocabulary_puts_padding_first_and_encoding_round_trips():
    index_to_char, char_to_index = helpers.build_vocabulary("I love MXNet")
    assert index_to_char[0] == helpers.PADDING and index_to_char[1:] == sorted(set("I love MXNet"))
    encoded = helpers.encode("love", char_to_index)
    assert encoded.dtype == np.int32 and helpers.decode(mx.nd.array(encoded), index_to_char) == "love"
    with pytest.raises(ValueError, match="'z'"):
        helpers.encode("lazy", char_to_index)


def test_three_char_windows_step_three_and_target_the_next_character():
    inputs, targets = helpers.three_char_windows(np.arange(10))
    assert inputs.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and targets.tolist() == [3, 6, 9]


def test_batches_are_contiguous_columns_with_targets_one_step_later():
    train, valid = helpers.split_by_position(np.arange(100), 0.1)
    assert train.tolist() == list(range(90)) and valid.tolist() == list(range(90, 100))
    data = helpers.batchify(np.arange(21), 4)  # 5 steps of 4 columns; the 21st character dropped
    assert data.shape == (5, 4) and data[:, 1].asnumpy().tolist() == [5, 6, 7, 8, 9]
    inputs, targets = helpers.get_batch(data, 2, 8)  # only 2 steps left after row 2
    assert inputs.shape == (2, 4) and (targets.asnumpy() == inputs.asnumpy() + 1).all()
    with pytest.raises(helpers.ParameterError, match="batch size of 32"):
        helpers.batchify(np.arange(40), 32)


def test_detach_stops_the_gradient_of_each_state():
    state = mx.nd.ones((2, 2))
    state.attach_grad()
    with mx.autograd.record():
        hidden = [state * 2, state * 3]
        (helpers.detach(hidden)[0] * state).sum().backward()
    assert state.grad.asnumpy().tolist() == [[2, 2], [2, 2]]  # d(x * const)/dx, nothing through the state


# ---------------------------------------------------------------- images

def test_images_load_as_rgb_in_minus_one_to_one_resized_and_grey_alpha_and_16_bit_handled(tmp_path):
    write_image(tmp_path / "red.jpg", height=96, width=80)
    write_image(tmp_path / "sub" / "grey.PNG", bgr=(128,), channels=1)
    transparent = np.zeros((64, 64, 4), np.uint8)  # fully transparent black: white on the page
    cv2.imwrite(str(tmp_path / "sub" / "clear.png"), transparent)
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((64, 64, 3), 65535, np.uint16))
    (tmp_path / "notes.txt").write_text("not an image")
    images, skipped = helpers.load_images(tmp_path)
    assert images.shape == (4, 3, 64, 64) and skipped == []
    deep, red, clear, grey = (image.asnumpy() for image in images)  # sorted by path
    assert np.allclose(red[:, 10, 10], [1, -1, -1], atol=0.02) and np.allclose(deep, 1)
    assert np.allclose(clear, 1) and np.allclose(grey, 128 / 127.5 - 1, atol=1e-4)


def test_undecodable_and_truncated_files_are_skipped_and_named(tmp_path):
    write_image(tmp_path / "whole.jpg")
    whole = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[:len(whole) * 6 // 10])
    (tmp_path / "text.jpg").write_text("not really a JPEG")
    images, skipped = helpers.load_images(tmp_path)
    assert images.shape[0] == 1 and sorted(path.name for path in skipped) == ["cut.jpg", "text.jpg"]


def test_a_folder_without_usable_images_is_data_unavailable_and_a_parameter_error_for_image_folder(tmp_path):
    (tmp_path / "text.jpg").write_text("not really a JPEG")
    with pytest.raises(helpers.DataUnavailable, match="could be decoded"):
        helpers.load_images(tmp_path)
    for folder in (tmp_path / "missing", tmp_path / "text.jpg", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        with pytest.raises(helpers.ParameterError, match=f"IMAGE_FOLDER = '{folder}'"):
            helpers.check_image_folder(folder)
    with pytest.raises(helpers.ParameterError, match="BATCH_SIZE = 64"):
        helpers.check_image_folder(tmp_path, batch_size=64)


def test_linked_folders_are_followed_and_a_loop_is_listed_once(tmp_path):
    write_image(tmp_path / "real" / "a.jpg")
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "link").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "loop").symlink_to(tmp_path / "real")
    assert [path.name for path in helpers.list_images(tmp_path / "faces")] == ["a.jpg"]


def test_loading_holds_the_pixels_as_bytes_not_a_second_float_copy(tmp_path):
    for index in range(200):
        write_image(tmp_path / f"{index:03d}.png", bgr=(index, 0, 0))
    tracemalloc.start()
    images, _ = helpers.load_images(tmp_path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert images.shape == (200, 3, 64, 64)
    assert peak < 200 * 3 * 64 * 64 * 4  # a float32 NumPy array of the set would be this large


def test_image_grid_tiles_with_white_gaps_and_show_images_saves_it(tmp_path):
    grid = helpers.image_grid(-np.ones((10, 3, 4, 4)), columns=4)
    assert grid.shape == (3 * 6 + 2, 4 * 6 + 2, 3) and grid.dtype == np.uint8
    assert grid[0, 0].tolist() == [255, 255, 255] and grid[2, 2].tolist() == [0, 0, 0]
    helpers.show_images(np.zeros((2, 3, 4, 4)), columns=2, path=tmp_path / "grid.png")
    assert cv2.imread(str(tmp_path / "grid.png")).shape == (8, 14, 3)


# ---------------------------------------------------------------- finding the data

def test_the_text_is_found_in_the_data_folder_first_and_checked(fake_repo, tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / storage.NIETZSCHE_FILE).write_text("another book")
    monkeypatch.setenv(helpers.DATA_ENV_VAR, str(tmp_path / "mine"))
    with pytest.raises(helpers.DataUnavailable, match="mine/nietzsche.txt is not the expected text"):
        storage.nietzsche_path()


def test_a_missing_text_that_cannot_be_downloaded_is_one_sentence(fake_repo, monkeypatch):
    monkeypatch.setattr(storage, "NIETZSCHE_URL", "http://127.0.0.1:9/nietzsche.txt")  # nothing listens
    with pytest.raises(helpers.DataUnavailable, match="nietzsche.txt is not in .*GENMODELS_DATA_DIR") as caught:
        storage.nietzsche_path()
    assert "\n" not in str(caught.value) and not (fake_repo / "data" / storage.NIETZSCHE_FILE).exists()


def test_faces_are_found_in_the_data_folder_or_said_missing(fake_repo):
    with pytest.raises(helpers.DataUnavailable, match="anime faces"):
        storage.faces_folder(download=False)
    write_image(fake_repo / "data" / helpers.FACES_FOLDER / "a.jpg")
    assert storage.faces_folder() == fake_repo / "data" / helpers.FACES_FOLDER


def test_the_real_text_has_600901_characters_and_86_vocabulary_entries(monkeypatch):
    if REAL_DATA_DIR:
        monkeypatch.setenv(helpers.DATA_ENV_VAR, REAL_DATA_DIR)
    monkeypatch.setattr(helpers, "REPO_ROOT", NOTEBOOKS.parent)
    text = helpers.read_text(storage.nietzsche_path())
    assert len(text) == 600901 and len(helpers.build_vocabulary(text)[0]) == 86


def test_output_dir_is_outputs_or_the_env_folder_and_exists(fake_repo, tmp_path, monkeypatch):
    monkeypatch.delenv("GENMODELS_OUTPUT_DIR", raising=False)
    assert helpers.output_dir() == fake_repo / "outputs" and (fake_repo / "outputs").is_dir()
    monkeypatch.setenv("GENMODELS_OUTPUT_DIR", str(tmp_path / "elsewhere"))
    assert helpers.output_dir() == tmp_path / "elsewhere" and (tmp_path / "elsewhere").is_dir()
