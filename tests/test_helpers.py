"""Unit tests for notebooks/helpers.py, on tiny data made here.

Every test runs against a throw-away repository root (see `fake_repo`), so nothing is ever
written into the real data/ or weights/. The real data is used only by the two tests at the
end, which are skipped unless GENMODELS_DATA_DIR points at a folder that holds it.
"""
import hashlib
import importlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import helpers  # first: it sets the thread count and engine before mxnet is imported

import cv2
import matplotlib
import mxnet as mx
import numpy as np
import pooch
import pytest

matplotlib.use("Agg")

REAL_DATA_DIR = os.environ.get(helpers.DATA_ENV_VAR)  # read before any test changes it
RED_BGR = (0, 0, 255)


@pytest.fixture(autouse=True)
def fake_repo(tmp_path, monkeypatch):
    """A repository root under tmp_path; no data directory from the environment."""
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.setattr(helpers, "REPO_ROOT", repo)
    monkeypatch.setattr(helpers, "WEIGHTS_DIR", repo / "weights")
    monkeypatch.setattr(helpers, "MANIFEST", repo / "weights" / "manifest.json")
    monkeypatch.delenv(helpers.DATA_ENV_VAR, raising=False)
    return repo


def write_image(path, bgr=RED_BGR, height=64, width=64):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), bgr, np.uint8))
    return path


# ---------------------------------------------------------------- machine and randomness

def test_cpu_cores_is_at_least_one():
    assert isinstance(helpers.cpu_cores(), int) and helpers.cpu_cores() >= 1


def test_omp_num_threads_is_set_after_import():
    assert int(os.environ["OMP_NUM_THREADS"]) >= 1


def test_import_sets_omp_threads_to_cpu_cores_and_warns_when_mxnet_came_first(monkeypatch, capsys):
    monkeypatch.delenv("OMP_NUM_THREADS")
    importlib.reload(helpers)  # mxnet is already in sys.modules here
    assert os.environ["OMP_NUM_THREADS"] == str(helpers.cpu_cores())
    assert "mxnet was imported before helpers" in capsys.readouterr().err


def test_import_keeps_an_existing_omp_num_threads_silently(monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    importlib.reload(helpers)
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert capsys.readouterr().err == ""


def engine_mxnet_starts(**environment):
    """The engine MXNet starts with in a fresh Python that imports helpers and runs one operator:
    the MXNET_ENGINE_TYPE it reads when the engine starts (helpers drops MXNet's own line saying so)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("MXNET_ENGINE_TYPE", "GENMODELS_MXNET_DEFAULT_ENGINE")}
    env.update(environment)
    code = ("import os, helpers, mxnet; mxnet.nd.ones(1).asnumpy(); "
            "print(os.environ.get('MXNET_ENGINE_TYPE') or \"threaded (MXNet's default)\")")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            cwd=Path(helpers.__file__).parent, check=True)
    return result.stdout.strip().splitlines()[-1]


def test_import_selects_the_synchronous_engine_on_the_cpu_build():
    assert helpers.mxnet_is_cpu_build()  # the tests run on requirements.txt: mxnet, the CPU wheel
    assert engine_mxnet_starts() == "NaiveEngine"


def test_default_engine_switch_keeps_mxnets_engine():
    assert engine_mxnet_starts(GENMODELS_MXNET_DEFAULT_ENGINE="1") == "threaded (MXNet's default)"


def test_an_engine_chosen_by_the_reader_is_kept():
    assert engine_mxnet_starts(MXNET_ENGINE_TYPE="ThreadedEngine") == "ThreadedEngine"


def test_choose_device_is_cpu_here_and_gpu_when_one_is_seen(monkeypatch):
    assert helpers.choose_device() == mx.cpu()
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 1)
    assert helpers.choose_device() == mx.gpu(0)


def test_seed_everything_repeats_python_numpy_and_mxnet_draws():
    def draws():
        return (random.random(), np.random.rand(3).tolist(),
                mx.nd.random.uniform(shape=3).asnumpy().tolist(),
                mx.nd.random.normal(shape=3).asnumpy().tolist())
    helpers.seed_everything(7)
    first = draws()
    helpers.seed_everything(7)
    assert draws() == first
    helpers.seed_everything(8)
    assert draws() != first


# ---------------------------------------------------------------- finding data

def test_data_dirs_puts_the_env_dir_first_then_repo_data(fake_repo, monkeypatch, tmp_path):
    assert helpers.data_dirs() == [fake_repo / "data"]
    monkeypatch.setenv(helpers.DATA_ENV_VAR, str(tmp_path / "elsewhere"))
    assert helpers.data_dirs() == [tmp_path / "elsewhere", fake_repo / "data"]


def test_sha256_of_matches_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"x" * 3_000_000)  # more than one 1 MiB block
    assert helpers.sha256_of(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_find_data_prefers_the_env_dir_and_falls_back_to_repo_data(fake_repo, monkeypatch, tmp_path):
    (fake_repo / "data").mkdir()
    (fake_repo / "data" / "a.txt").write_text("repo")
    assert helpers.find_data("a.txt") == fake_repo / "data" / "a.txt"
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "a.txt").write_text("env")
    monkeypatch.setenv(helpers.DATA_ENV_VAR, str(tmp_path / "env"))
    assert helpers.find_data("a.txt") == tmp_path / "env" / "a.txt"


def test_find_data_missing_file_names_every_place_and_the_fix(fake_repo, monkeypatch, tmp_path):
    monkeypatch.setenv(helpers.DATA_ENV_VAR, str(tmp_path / "no-such-dir"))
    with pytest.raises(FileNotFoundError) as caught:
        helpers.find_data("missing.txt")
    message = str(caught.value)
    assert "missing.txt not found" in message
    assert str(tmp_path / "no-such-dir" / "missing.txt") in message
    assert "data/missing.txt" in message and str(fake_repo) not in message  # no machine path
    assert "data/missing.txt" in message and helpers.DATA_ENV_VAR in message
    assert "data/README.md" in message


def test_faces_folder_found_and_missing(fake_repo):
    with pytest.raises(helpers.DataUnavailable, match="the anime faces are not on disk"):
        helpers.faces_folder(download=False)
    (fake_repo / "data" / "anime-faces" / "images").mkdir(parents=True)
    assert helpers.faces_folder() == fake_repo / "data" / "anime-faces" / "images"


def test_nietzsche_path_missing_without_download_raises_and_never_downloads(monkeypatch):
    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(FileNotFoundError, match=f"{helpers.NIETZSCHE_FILE} not found"):
        helpers.nietzsche_path(download=False)


def test_nietzsche_path_download_failure_names_url_and_where_to_put_it(fake_repo, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("network is down")
    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(FileNotFoundError) as caught:
        helpers.nietzsche_path()
    message = str(caught.value)
    assert helpers.NIETZSCHE_URL in message and "network is down" in message
    assert f"download it by hand into data/{helpers.NIETZSCHE_FILE}," in message  # no machine path
    assert helpers.DATA_ENV_VAR in message
    assert isinstance(caught.value, helpers.DataUnavailable)
    assert isinstance(caught.value.__cause__, ConnectionError)


def test_nietzsche_path_downloads_into_repo_data_and_verifies(fake_repo, monkeypatch):
    content = b"Supposing that Truth is a woman--what then?\n"
    monkeypatch.setattr(helpers, "NIETZSCHE_SHA256", hashlib.sha256(content).hexdigest())
    calls = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        calls.append((url, known_hash))
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / fname).write_bytes(content)
        return str(Path(path) / fname)
    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    path = helpers.nietzsche_path()
    assert path == fake_repo / "data" / helpers.NIETZSCHE_FILE and path.read_bytes() == content
    assert calls == [(helpers.NIETZSCHE_URL, f"sha256:{helpers.NIETZSCHE_SHA256}")]
    assert helpers.nietzsche_path(download=False) == path  # now found locally


def test_nietzsche_path_local_file_with_wrong_content_is_a_checksum_mismatch(fake_repo):
    local = fake_repo / "data" / helpers.NIETZSCHE_FILE
    local.parent.mkdir()
    local.write_text("not the book")
    with pytest.raises(ValueError, match="checksum mismatch") as caught:
        helpers.nietzsche_path(download=False)
    assert "data/nietzsche.txt" in str(caught.value) and helpers.NIETZSCHE_SHA256 in str(caught.value)
    assert "delete it" in str(caught.value)


# ---------------------------------------------------------------- text

def test_read_text_reads_utf8(tmp_path):
    (tmp_path / "t.txt").write_bytes("Übermensch — ja".encode("utf-8"))
    assert helpers.read_text(tmp_path / "t.txt") == "Übermensch — ja"


def test_build_vocabulary_puts_padding_at_zero_then_sorted_characters():
    index_to_char, char_to_index = helpers.build_vocabulary("banana!" + helpers.PADDING)
    assert index_to_char == [helpers.PADDING, "!", "a", "b", "n"]
    assert char_to_index == {char: i for i, char in enumerate(index_to_char)}


def test_encode_decode_round_trip_from_list_numpy_and_ndarray():
    text = "I love mxnet"
    index_to_char, char_to_index = helpers.build_vocabulary(text)
    indices = helpers.encode(text, char_to_index)
    assert indices.dtype == np.int32 and indices.shape == (len(text),)
    assert helpers.decode(indices, index_to_char) == text
    assert helpers.decode(indices.tolist(), index_to_char) == text
    assert helpers.decode(mx.nd.array(indices), index_to_char) == text


def test_encode_unknown_characters_raises_naming_them():
    _, char_to_index = helpers.build_vocabulary("abc")
    with pytest.raises(ValueError, match="not in the vocabulary") as caught:
        helpers.encode("abxzx", char_to_index)
    assert "['x', 'z']" in str(caught.value) and "training text" in str(caught.value)


def test_three_char_windows_on_i_love_mxnet_stride_three_next_char_target():
    text = "I love mxnet"
    index_to_char, char_to_index = helpers.build_vocabulary(text)
    inputs, targets = helpers.three_char_windows(helpers.encode(text, char_to_index))
    assert inputs.shape == (3, 3) and targets.shape == (3,)
    assert [helpers.decode(row, index_to_char) for row in inputs] == ["I l", "ove", " mx"]
    assert helpers.decode(targets, index_to_char) == "o n"


def test_three_char_windows_of_too_short_a_text_is_empty():
    inputs, targets = helpers.three_char_windows(np.arange(3))
    assert inputs.shape == (0, 3) and targets.shape == (0,)


def test_split_by_position_keeps_order_and_sizes():
    train, valid = helpers.split_by_position(np.arange(100), 0.1)
    assert len(train) == 90 and len(valid) == 10
    assert np.array_equal(np.concatenate([train, valid]), np.arange(100))


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_split_by_position_rejects_a_fraction_outside_zero_one(fraction):
    with pytest.raises(ValueError, match=f"valid_fraction must be between 0 and 1, got {fraction}"):
        helpers.split_by_position(np.arange(10), fraction)


def test_batchify_has_shape_steps_by_batch_and_contiguous_columns():
    data = helpers.batchify(np.arange(43), 4)  # 43 // 4 = 10 steps, 3 left over
    assert isinstance(data, mx.nd.NDArray) and data.shape == (10, 4)
    for column in range(4):
        assert data[:, column].asnumpy().tolist() == list(range(column * 10, column * 10 + 10))


def test_batchify_too_short_raises():
    with pytest.raises(ValueError, match="3 characters are too few for batch size 2"):
        helpers.batchify(np.arange(3), 2)


def test_get_batch_shapes_shifted_target_and_short_final_batch():
    source = helpers.batchify(np.arange(40), 4)  # (10, 4)
    data, target = helpers.get_batch(source, 0, 4)
    assert data.shape == target.shape == (4, 4)
    assert np.array_equal(target.asnumpy()[:-1], data.asnumpy()[1:])
    assert np.array_equal(target.asnumpy(), data.asnumpy() + 1)  # the next character
    data, target = helpers.get_batch(source, 8, 4)  # only row 9 is left to predict
    assert data.shape == target.shape == (1, 4)
    assert np.array_equal(target.asnumpy(), source[9:10].asnumpy())


def gradient_through(detached_of):
    """d/dx of sum(3 * detach(2x) + 2x): 2 if detach cuts the graph, 8 if it does not."""
    x = mx.nd.ones(3)
    x.attach_grad()
    with mx.autograd.record():
        hidden = x * 2
        cut = detached_of(hidden)
        loss = (cut * 3 + hidden).sum()
    loss.backward()
    return x.grad.asnumpy()


def test_detach_single_ndarray_stops_the_gradient():
    assert gradient_through(helpers.detach).tolist() == [2, 2, 2]
    assert gradient_through(lambda h: h).tolist() == [8, 8, 8]  # the control


def test_detach_list_and_tuple_detaches_each_state():
    assert gradient_through(lambda h: helpers.detach([h, h])[1]).tolist() == [2, 2, 2]
    states = helpers.detach((mx.nd.ones(2), mx.nd.zeros(2)))
    assert isinstance(states, list) and len(states) == 2
    assert states[0].asnumpy().tolist() == [1, 1]


# ---------------------------------------------------------------- images

def test_load_image_is_chw_rgb_in_minus_one_to_one(tmp_path):
    image = helpers.load_image(write_image(tmp_path / "red.png"))
    assert image.shape == (3, 64, 64) and image.dtype == np.float32
    assert np.all(image[0] == 1.0) and np.all(image[1:] == -1.0)  # red first: RGB, not BGR
    black = helpers.load_image(write_image(tmp_path / "black.png", (0, 0, 0)))
    white = helpers.load_image(write_image(tmp_path / "white.png", (255, 255, 255)))
    assert black.min() == black.max() == -1.0 and white.min() == white.max() == 1.0


def test_load_image_resizes_a_non_square_image(tmp_path):
    path = write_image(tmp_path / "wide.jpg", height=30, width=50)
    assert helpers.load_image(path).shape == (3, 64, 64)
    assert helpers.load_image(path, size=16).shape == (3, 16, 16)


def test_load_image_returns_none_for_undecodable_bytes(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8 garbage, not a jpeg")
    (tmp_path / "fake.png").write_text("just some text")
    (tmp_path / "empty.jpg").write_bytes(b"")
    for name in ("x.jpg", "fake.png", "empty.jpg"):
        assert helpers.load_image(tmp_path / name) is None


def test_list_images_recursive_mixed_case_sorted_ignoring_other_files(tmp_path):
    wanted = [write_image(tmp_path / "a.PNG"), write_image(tmp_path / "sub" / "b.JpG"),
              write_image(tmp_path / "sub" / "deeper" / "c.jpeg")]
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub" / "readme.md").write_text("not an image")
    assert helpers.list_images(tmp_path) == sorted(wanted)


def test_list_images_missing_folder_raises_file_not_found_with_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as caught:
        helpers.list_images(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(caught.value)
    assert helpers.FACES_FOLDER in str(caught.value) and helpers.DATA_ENV_VAR in str(caught.value)


def test_list_images_folder_without_images_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="holds no .jpg, .jpeg or .png files"):
        helpers.list_images(tmp_path)
    (tmp_path / "notes.txt").write_text("still no images")
    with pytest.raises(ValueError, match=str(tmp_path)):
        helpers.list_images(tmp_path)


def test_load_images_skips_and_reports_undecodable_files(tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "sub" / "b.jpg", (255, 0, 0), height=40, width=80)
    encoded = cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))[1].tobytes()
    (tmp_path / "truncated.jpg").write_bytes(encoded[:len(encoded) // 2])
    (tmp_path / "x.jpg").write_bytes(b"garbage bytes")
    (tmp_path / "fake.png").write_text("text bytes named like an image")
    (tmp_path / "notes.txt").write_text("ignored by the listing")
    images, skipped = helpers.load_images(tmp_path)
    assert isinstance(images, mx.nd.NDArray) and images.shape == (2, 3, 64, 64)
    assert sorted(path.name for path in skipped) == ["fake.png", "truncated.jpg", "x.jpg"]
    assert images.min().asscalar() >= -1 and images.max().asscalar() <= 1


def test_load_images_limit_and_size(tmp_path):
    for index in range(5):
        write_image(tmp_path / f"{index}.png")
    images, skipped = helpers.load_images(tmp_path, size=8, limit=3)
    assert images.shape == (3, 3, 8, 8) and skipped == []


def test_load_images_all_undecodable_raises_value_error(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"garbage")
    (tmp_path / "y.png").write_bytes(b"more garbage")
    with pytest.raises(ValueError, match="none of the 2 image files .* could be decoded"):
        helpers.load_images(tmp_path)


def test_image_grid_shape_dtype_and_values():
    images = -np.ones((10, 3, 4, 5), np.float32)  # black
    images[1] = 1  # white
    grid = helpers.image_grid(mx.nd.array(images), columns=4)  # 3 rows of 4 cells of 6 x 7
    assert grid.shape == (3 * 6 + 2, 4 * 7 + 2, 3) and grid.dtype == np.uint8
    assert np.all(grid[2:6, 2:7] == 0) and np.all(grid[2:6, 9:14] == 255)
    assert np.all(grid[:2] == 255)  # a white border
    assert np.array_equal(helpers.image_grid(images, columns=4), grid)  # NumPy works too


@pytest.mark.filterwarnings("ignore::UserWarning")  # Agg cannot "show"
def test_show_images_writes_a_png_when_given_a_path(tmp_path):
    import matplotlib.pyplot as plt

    images = mx.nd.random.uniform(-1, 1, shape=(6, 3, 8, 8))
    path = tmp_path / "figures" / "grid.png"
    try:
        helpers.show_images(images, columns=3, title="six", path=path)
        helpers.show_images(images, columns=3)  # no path: shows only
    finally:
        plt.close("all")
    picture = cv2.imread(str(path))
    assert picture is not None and picture.shape == helpers.image_grid(images, 3).shape
    assert [p.name for p in tmp_path.rglob("*.png")] == ["grid.png"]


def test_output_dir_is_repo_outputs_or_the_env_folder_and_exists(fake_repo, monkeypatch, tmp_path):
    monkeypatch.delenv("GENMODELS_OUTPUT_DIR", raising=False)
    assert helpers.output_dir() == fake_repo / "outputs" and (fake_repo / "outputs").is_dir()
    monkeypatch.setenv("GENMODELS_OUTPUT_DIR", str(tmp_path / "mine" / "out"))
    assert helpers.output_dir() == tmp_path / "mine" / "out" and (tmp_path / "mine" / "out").is_dir()


# ---------------------------------------------------------------- atomic writes

def test_atomic_write_replaces_the_file_and_creates_parents(tmp_path):
    target = tmp_path / "new" / "file.txt"
    assert helpers.atomic_write(target, lambda tmp: Path(tmp).write_text("one")) == target
    helpers.atomic_write(target, lambda tmp: Path(tmp).write_text("two"))
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]


def test_atomic_write_keeps_the_old_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "out" / "file.txt"
    target.parent.mkdir()
    target.write_text("old")

    def half_write(temporary):
        Path(temporary).write_text("half of the ne")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError, match="disk full"):
        helpers.atomic_write(target, half_write)
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]  # no .partial left


# ---------------------------------------------------------------- weights and manifest

def write_weights(fake_repo, name, content):
    (fake_repo / "weights").mkdir(exist_ok=True)
    (fake_repo / "weights" / name).write_bytes(content)
    return fake_repo / "weights" / name


def test_read_manifest_is_empty_when_there_is_none():
    assert helpers.read_manifest() == {}


def test_record_weights_read_manifest_verified_weights_round_trip(fake_repo):
    path = write_weights(fake_repo, "rnn.params", b"\x00weights\x01")
    entry = helpers.record_weights("rnn.params", valid_loss=1.42, command="TRAIN = True")
    assert entry == {"sha256": hashlib.sha256(b"\x00weights\x01").hexdigest(),
                     "valid_loss": 1.42, "command": "TRAIN = True"}
    write_weights(fake_repo, "gan.params", b"other")
    helpers.record_weights("gan.params", epochs=1)
    helpers.record_weights("rnn.params", valid_loss=1.30, command="TRAIN = True")  # replaces
    manifest = helpers.read_manifest()
    assert manifest == json.loads((fake_repo / "weights" / "manifest.json").read_text())
    assert sorted(manifest) == ["gan.params", "rnn.params"]
    assert manifest["rnn.params"]["valid_loss"] == 1.30
    assert helpers.verified_weights("rnn.params") == (path, manifest["rnn.params"])


def test_verified_weights_missing_file_or_entry_raises_with_the_fix(fake_repo):
    with pytest.raises(FileNotFoundError, match="TRAIN = True") as caught:
        helpers.verified_weights("absent.params")
    assert "absent.params" in str(caught.value) and "git checkout weights/" in str(caught.value)
    write_weights(fake_repo, "unrecorded.params", b"never recorded")
    with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
        helpers.verified_weights("unrecorded.params")


def test_verified_weights_checksum_mismatch_raises_value_error(fake_repo):
    write_weights(fake_repo, "rnn.params", b"good")
    helpers.record_weights("rnn.params")
    path = write_weights(fake_repo, "rnn.params", b"tampered")
    with pytest.raises(ValueError, match="checksum mismatch") as caught:
        helpers.verified_weights("rnn.params")
    assert "weights/rnn.params" in str(caught.value) and "git checkout weights/" in str(caught.value)


# ---------------------------------------------------------------- the real data (optional)

def real_data(relative_path):
    if not REAL_DATA_DIR or not (Path(REAL_DATA_DIR) / relative_path).exists():
        pytest.skip(f"real data: set {helpers.DATA_ENV_VAR} to a folder holding {relative_path}")
    return Path(REAL_DATA_DIR)


def test_real_nietzsche_text_has_600901_characters_and_86_vocabulary_entries(monkeypatch):
    monkeypatch.setenv(helpers.DATA_ENV_VAR, str(real_data(helpers.NIETZSCHE_FILE)))
    path = helpers.nietzsche_path(download=False)  # checks the SHA-256 too
    assert hashlib.sha256(path.read_bytes()).hexdigest() == helpers.NIETZSCHE_SHA256
    text = helpers.read_text(path)
    index_to_char, _ = helpers.build_vocabulary(text)
    assert len(text) == 600_901 and len(set(text)) == 85 and len(index_to_char) == 86


def test_real_faces_folder_loads_a_few_faces(monkeypatch):
    monkeypatch.setenv(helpers.DATA_ENV_VAR, str(real_data(helpers.FACES_FOLDER)))
    images, skipped = helpers.load_images(helpers.faces_folder(), limit=4)
    assert images.shape == (4 - len(skipped), 3, 64, 64)


def test_helpers_imports_from_any_working_directory(tmp_path):
    """`make` puts notebooks/ on the virtual environment's path: papermill without --cwd still finds helpers."""
    import sysconfig

    if not (Path(sysconfig.get_paths()["purelib"]) / "genmodels-notebooks.pth").exists():
        pytest.skip("this Python was not set up by make (no genmodels-notebooks.pth)")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", "import helpers; print(helpers.REPO_ROOT)"],
                            cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == Path(__file__).resolve().parent.parent  # this repository


def test_check_parameters_names_the_parameter_and_the_shipped_value():
    rules = {"EPOCHS": (int, 1, 30), "MODE": {"lstm", "gru"}, "TRAIN": bool, "COUNT": (int, 1, None, "or None")}
    good = {"EPOCHS": 3, "MODE": "gru", "TRAIN": False, "COUNT": None}
    helpers.check_parameters(good, rules, shipped={"epochs": 21})
    for name, bad in (("EPOCHS", 0), ("EPOCHS", 2.5), ("MODE", "lsmt"), ("TRAIN", "no"), ("COUNT", 0)):
        with pytest.raises(helpers.ParameterError) as error:
            helpers.check_parameters({**good, name: bad}, rules, shipped={"epochs": 21})
        assert str(error.value).startswith(f"{name} = {bad!r}")
        assert ("try 21" in str(error.value)) == (name == "EPOCHS")


def test_apply_smoke_sets_the_small_values_only_in_smoke_mode(monkeypatch):
    values = {"EPOCHS": 21}
    monkeypatch.setenv(helpers.SMOKE_ENV_VAR, "0")
    assert helpers.apply_smoke(values, EPOCHS=1) is False and values == {"EPOCHS": 21}
    monkeypatch.setenv(helpers.SMOKE_ENV_VAR, "1")
    assert helpers.apply_smoke(values, EPOCHS=1) is True and values == {"EPOCHS": 1}
