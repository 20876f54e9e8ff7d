"""Tests of the parts of notebooks/helpers.py and scripts/run_notebooks.py that keep a reader's
work safe: checkpoints, the lock, experiments, choosing weights, publishing into weights/,
atomic writes, one-line errors, smoke-mode parsing, and images that are damaged or unusual.

Everything runs in temporary folders: a fake repository root, a fake weights/ folder, and
synthetic images made here (never the data set).
"""
import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path

import helpers  # first: it sets the thread count and engine before mxnet is imported

import cv2
import nbformat
import numpy as np
import pooch
import pytest

import run_notebooks

FORK = multiprocessing.get_context("fork")  # children reuse the imported helpers: no second mxnet start


@pytest.fixture(autouse=True)
def fake_repo(tmp_path, monkeypatch):
    """A repository root with an empty weights/ under tmp_path; checkpoints under tmp_path too."""
    repo = tmp_path / "repo"
    (repo / "weights").mkdir(parents=True)
    monkeypatch.setattr(helpers, "REPO_ROOT", repo)
    monkeypatch.setattr(helpers, "WEIGHTS_DIR", repo / "weights")
    monkeypatch.setattr(helpers, "MANIFEST", repo / "weights" / "manifest.json")
    monkeypatch.setenv(helpers.CHECKPOINT_ENV_VAR, str(tmp_path / "checkpoints"))
    monkeypatch.delenv(helpers.DATA_ENV_VAR, raising=False)
    monkeypatch.delenv(helpers.EXPERIMENT_LOG_ENV_VAR, raising=False)
    return repo


def write_text(text):
    return lambda path: Path(path).write_text(text)


def snapshot(folder):
    """{relative path: bytes} of every file under `folder`, hidden ones included."""
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def wait_for(path, seconds=30):
    deadline = time.monotonic() + seconds
    while not Path(path).exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


# ---------------------------------------------------------------- one-line errors, check, smoke mode

def test_error_classes_are_the_builtin_kinds_callers_already_catch():
    assert issubclass(helpers.ParameterError, ValueError)
    assert issubclass(helpers.DataUnavailable, FileNotFoundError)
    assert issubclass(helpers.CheckpointInUse, RuntimeError)
    assert issubclass(helpers.WeightsUnavailable, FileNotFoundError)
    assert issubclass(helpers.WeightsDamaged, ValueError)


def test_parameter_error_renders_as_one_line_in_ipython():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    with capture_output() as shown:
        shell.run_cell("import helpers\nhelpers.check(-1 > 0, 'BATCH_SIZE = -1 must be at least 1; try 64')")
    assert shown.stdout == "ParameterError: BATCH_SIZE = -1 must be at least 1; try 64\n"
    assert "Traceback" not in shown.stdout + shown.stderr
    with capture_output() as control:  # an ordinary error still gets IPython's full traceback
        shell.run_cell("raise ValueError('plain')")
    assert "Traceback" in control.stdout


def test_check_passes_silently_and_raises_the_message():
    helpers.check(True, "never shown")
    with pytest.raises(helpers.ParameterError, match=r"^EPOCHS = 0 must be at least 1$"):
        helpers.check(False, "EPOCHS = 0 must be at least 1")


@pytest.mark.parametrize("value, expected", [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), (" on ", True),
    ("0", False), ("false", False), ("False", False), ("no", False), ("off", False), ("", False),
    (None, False)])
def test_smoke_test_parses_the_environment_variable_strictly(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(helpers.SMOKE_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(helpers.SMOKE_ENV_VAR, value)
    assert helpers.smoke_test() is expected


@pytest.mark.parametrize("value", ["2", "maybe", "ture", "-1"])
def test_smoke_test_rejects_anything_else_naming_the_variable_and_the_fix(monkeypatch, value):
    monkeypatch.setenv(helpers.SMOKE_ENV_VAR, value)
    with pytest.raises(helpers.ParameterError) as caught:
        helpers.smoke_test()
    assert str(caught.value) == (f"GENMODELS_SMOKE = {value!r} is not understood; set it to 1 (quick "
                                 "smoke run) or 0 (full run), or unset it")


def test_missing_text_that_cannot_be_downloaded_is_data_unavailable_in_one_line(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("network is down\n  (second line of the low-level error)")
    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(helpers.DataUnavailable) as caught:
        helpers.nietzsche_path()
    message = str(caught.value)
    assert "\n" not in message and "network is down (second line" in message
    assert helpers.NIETZSCHE_URL in message and "download it by hand" in message
    assert caught.value._render_traceback_() == [f"DataUnavailable: {message}"]
    with pytest.raises(helpers.DataUnavailable, match="nietzsche.txt not found"):
        helpers.nietzsche_path(download=False)


# ---------------------------------------------------------------- checkpoint_dir

def test_checkpoint_dir_is_under_the_env_folder_created_and_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv(helpers.CHECKPOINT_ENV_VAR, "relative/ckpts")
    monkeypatch.chdir(tmp_path)
    folder = helpers.checkpoint_dir("char_lm")
    assert folder == tmp_path / "relative" / "ckpts" / "char_lm" and folder.is_dir()
    assert folder.is_absolute()


def test_checkpoint_dir_defaults_to_the_repository_whatever_the_working_directory(
        fake_repo, tmp_path, monkeypatch):
    monkeypatch.delenv(helpers.CHECKPOINT_ENV_VAR)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert helpers.checkpoint_dir("dcgan") == fake_repo / "checkpoints" / "dcgan"
    assert not (elsewhere / "checkpoints").exists() and not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("name", ["", "../outside", "/etc"])
def test_checkpoint_dir_refuses_names_that_leave_the_checkpoint_root(name):
    with pytest.raises(helpers.ParameterError, match="must be a plain folder name"):
        helpers.checkpoint_dir(name)


def test_the_test_session_never_uses_the_repository_checkpoints_or_outputs():
    repository = Path(__file__).resolve().parent.parent
    for variable in ("GENMODELS_CHECKPOINT_DIR", "GENMODELS_OUTPUT_DIR"):
        configured = Path(os.environ[variable]).resolve()
        assert repository not in configured.parents, f"{variable} points into the repository"
    assert repository not in run_notebooks.OUTPUTS.parents


def test_shown_path_hides_machine_paths(fake_repo, tmp_path):
    assert helpers.shown_path(fake_repo / "weights" / "a.params") == "weights/a.params"
    assert helpers.shown_path(tmp_path / "checkpoints" / "x") == "$GENMODELS_CHECKPOINT_DIR/x"


# ---------------------------------------------------------------- exclusive_run

def hold_lock(folder, ready, release):
    with helpers.exclusive_run(folder):
        Path(ready).touch()
        wait_for(release, 60)


def test_a_second_run_on_one_folder_is_refused_while_the_first_is_live(tmp_path):
    folder = helpers.checkpoint_dir("char_lm")
    ready, release = tmp_path / "ready", tmp_path / "release"
    first = FORK.Process(target=hold_lock, args=(folder, ready, release))
    first.start()
    try:
        wait_for(ready)
        with pytest.raises(helpers.CheckpointInUse) as caught:
            with helpers.exclusive_run(folder):
                pytest.fail("the second run must not start")
        message = str(caught.value)
        assert message.startswith("$GENMODELS_CHECKPOINT_DIR/char_lm is in use by another run "
                                  f"(process {first.pid} on ")
        assert message.endswith("wait for it to finish or stop it, then run this again")
        assert caught.value._render_traceback_() == [f"CheckpointInUse: {message}"]
        with pytest.raises(helpers.CheckpointInUse):
            helpers.discard_checkpoints(folder)  # not behind a live run's back either
    finally:
        release.touch()
        first.join(30)
    assert first.exitcode == 0
    assert not (folder / helpers.LOCK_FILE).exists()  # released and removed
    with helpers.exclusive_run(folder):  # free again
        pass


def test_the_same_process_cannot_enter_one_folder_twice():
    folder = helpers.checkpoint_dir("char_lm")
    with helpers.exclusive_run(folder):
        with pytest.raises(helpers.CheckpointInUse, match="already locked by this Python process"):
            with helpers.exclusive_run(folder):
                pass
    with helpers.exclusive_run(folder) as entered:
        assert entered == folder.resolve()
        holder = json.loads((folder / helpers.LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] and holder["started"].endswith("UTC")


def dead_pid():
    child = FORK.Process(target=int)
    child.start()
    child.join()
    return child.pid


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_line(capsys):
    folder = helpers.checkpoint_dir("char_lm")
    pid = dead_pid()
    (folder / helpers.LOCK_FILE).write_text(json.dumps({"pid": pid, "host": "h", "started": "t"}))
    with helpers.exclusive_run(folder):
        pass
    assert capsys.readouterr().out == (f"$GENMODELS_CHECKPOINT_DIR/char_lm: taking over the lock of "
                                       f"process {pid}, which ended without releasing it (an interrupted run)\n")


def test_an_exception_inside_the_block_releases_the_lock():
    folder = helpers.checkpoint_dir("char_lm")
    with pytest.raises(KeyboardInterrupt):
        with helpers.exclusive_run(folder):
            raise KeyboardInterrupt
    with helpers.exclusive_run(folder):
        pass


# ---------------------------------------------------------------- save_epoch / latest_epoch

def save(folder, epoch, best_epoch=None, **files):
    writers = {name: write_text(text) for name, text in (files or {"model.params": f"w{epoch}"}).items()}
    record = {"losses": list(range(epoch)), "best_epoch": best_epoch}
    return helpers.save_epoch(folder, epoch, writers, record)


def test_save_epoch_writes_a_complete_folder_with_checksums_and_latest_epoch_reads_it():
    folder = helpers.checkpoint_dir("char_lm")
    assert helpers.latest_epoch(folder) is None
    path = helpers.save_epoch(folder, 3, {"model.params": write_text("weights"),
                                          "trainer.states": write_text("adam")},
                              {"train": [np.float32(2.5), 2.0], "config": {"lr": 0.002}})
    assert path == folder / "epoch-0003"
    assert sorted(p.name for p in path.iterdir()) == ["model.params", "record.json", "trainer.states"]
    saved = json.loads((path / "record.json").read_text())
    assert saved["epoch"] == 3
    assert saved["sha256"] == {"model.params": hashlib.sha256(b"weights").hexdigest(),
                               "trainer.states": hashlib.sha256(b"adam").hexdigest()}
    assert helpers.latest_epoch(folder) == (path, {"train": [2.5, 2.0], "config": {"lr": 0.002},
                                                   "epoch": 3})
    assert [p.name for p in folder.iterdir()] == ["epoch-0003"]  # no temporary folder left


def test_latest_epoch_of_a_folder_that_does_not_exist_is_none(tmp_path):
    assert helpers.latest_epoch(tmp_path / "never-made") is None


def test_save_epoch_keeps_the_newest_two_and_the_best_epoch():
    folder = helpers.checkpoint_dir("char_lm")
    for epoch in range(1, 7):
        save(folder, epoch, best_epoch=2)
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0002", "epoch-0005", "epoch-0006"]
    save(folder, 7, best_epoch=7)
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0006", "epoch-0007"]


def test_saving_an_epoch_again_replaces_it_and_drops_later_epochs_of_an_abandoned_run():
    folder = helpers.checkpoint_dir("char_lm")
    for epoch in (1, 2, 3):
        save(folder, epoch)
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0002", "epoch-0003"]
    save(folder, 2, **{"model.params": "second try"})  # epoch 3 was not usable: resumed from 2
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0002"]
    path, record = helpers.latest_epoch(folder)
    assert path.name == "epoch-0002" and (path / "model.params").read_text() == "second try"


def test_a_writer_that_raises_leaves_the_previous_epoch_as_the_latest():
    folder = helpers.checkpoint_dir("char_lm")
    save(folder, 1)

    def crash(path):
        Path(path).write_text("half of the")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        helpers.save_epoch(folder, 2, {"model.params": write_text("w2"), "trainer.states": crash}, {})
    assert [p.name for p in folder.iterdir()] == ["epoch-0001"]
    path, record = helpers.latest_epoch(folder)
    assert path.name == "epoch-0001" and record["epoch"] == 1


def test_a_writer_that_writes_nothing_is_an_error():
    folder = helpers.checkpoint_dir("char_lm")
    with pytest.raises(RuntimeError, match="the writer of model.params wrote nothing"):
        helpers.save_epoch(folder, 1, {"model.params": lambda path: None}, {})
    assert helpers.latest_epoch(folder) is None


@pytest.mark.parametrize("epoch", [-1, 1.5, "3", True])
def test_save_epoch_rejects_an_epoch_that_is_not_a_whole_number(epoch):
    with pytest.raises(ValueError, match="epoch must be a whole number >= 0"):
        helpers.save_epoch(helpers.checkpoint_dir("x"), epoch, {"a": write_text("a")}, {})


def test_an_unwritable_record_fails_before_any_file_is_written():
    folder = helpers.checkpoint_dir("char_lm")
    calls = []
    with pytest.raises(TypeError, match="cannot be written to JSON"):
        helpers.save_epoch(folder, 1, {"a": calls.append}, {"model": object()})
    assert calls == [] and list(folder.iterdir()) == []


def killed_while_saving(folder, ready):
    with helpers.exclusive_run(folder):
        save(folder, 1)

        def stall(path):
            Path(path).write_bytes(b"\x00" * 1000)  # half an epoch-2 file on disk
            Path(ready).touch()
            time.sleep(60)
        helpers.save_epoch(folder, 2, {"model.params": write_text("w2"), "trainer.states": stall}, {})


def test_a_run_killed_mid_checkpoint_resumes_from_the_previous_complete_epoch(tmp_path, capsys):
    folder = helpers.checkpoint_dir("char_lm")
    ready = tmp_path / "ready"
    child = FORK.Process(target=killed_while_saving, args=(folder, ready))
    child.start()
    wait_for(ready)
    os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert any(p.name.startswith(".partial-epoch-0002") for p in folder.iterdir())  # really mid-write
    path, record = helpers.latest_epoch(folder)
    assert path.name == "epoch-0001" and (path / "model.params").read_text() == "w1"
    with helpers.exclusive_run(folder):  # the killed run's lock is taken over
        save(folder, 2)  # and its half-written folder is cleaned away
    assert f"taking over the lock of process {child.pid}" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0001", "epoch-0002"]


def test_a_tampered_epoch_is_rejected_and_the_previous_one_used(capsys):
    folder = helpers.checkpoint_dir("char_lm")
    save(folder, 1)
    save(folder, 2)
    (folder / "epoch-0002" / "model.params").write_text("edited after saving")
    path, record = helpers.latest_epoch(folder)
    assert path.name == "epoch-0001"
    assert capsys.readouterr().out == (
        "skipping the checkpoint $GENMODELS_CHECKPOINT_DIR/char_lm/epoch-0002: model.params does "
        "not match its checksum (changed after it was saved)\n")


@pytest.mark.parametrize("damage, reason", [
    (lambda path: (path / "record.json").unlink(), "it has no record.json (an incomplete checkpoint)"),
    (lambda path: (path / "record.json").write_text('{"epoch": 2, "sha'), "its record.json is damaged"),
    (lambda path: (path / "model.params").unlink(), "model.params is missing"),
    (lambda path: (path / "record.json").write_text("[]"), "its record.json lacks the checksums"),
])
def test_an_incomplete_or_damaged_epoch_is_skipped_with_its_reason(damage, reason, capsys):
    folder = helpers.checkpoint_dir("char_lm")
    save(folder, 1)
    save(folder, 2)
    damage(folder / "epoch-0002")
    assert helpers.latest_epoch(folder)[0].name == "epoch-0001"
    assert reason in capsys.readouterr().out


def test_discard_checkpoints_deletes_what_a_run_resumes_from_and_keeps_the_experiment():
    folder = helpers.checkpoint_dir("dcgan")
    save(folder, 1)
    save(folder, 2)
    (folder / "grids").mkdir()
    (folder / "grids" / "epoch-1.png").write_bytes(b"png")
    helpers.save_experiment("dcgan", {"g.params": write_text("g")}, {"g.params": {"config": {}}})
    assert helpers.discard_checkpoints(folder) == ["epoch-0001", "epoch-0002", "grids"]
    assert [p.name for p in folder.iterdir()] == ["experiment"]
    assert helpers.latest_epoch(folder) is None
    with helpers.exclusive_run(folder):  # inside the reader's own lock it works too
        save(folder, 1)
        assert helpers.discard_checkpoints(folder) == ["epoch-0001"]
    assert helpers.discard_checkpoints(folder.parent / "never-made") == []


# ---------------------------------------------------------------- epoch_seed: resuming equals not stopping

def test_epoch_seed_is_fixed_per_seed_and_epoch_and_a_valid_seed():
    seeds = {helpers.epoch_seed(seed, epoch) for seed in (1, 7) for epoch in range(50)}
    assert len(seeds) == 100 and all(0 <= seed < 2 ** 31 for seed in seeds)
    assert helpers.epoch_seed(7, 3) == helpers.epoch_seed(7, 3)


def draws_of_epochs(first, last, seed=7):
    import mxnet as mx

    draws = []
    for epoch in range(first, last + 1):
        helpers.seed_everything(helpers.epoch_seed(seed, epoch))
        draws.append((np.random.rand(2).tolist(), mx.nd.random.uniform(shape=2).asnumpy().tolist()))
    return draws


def test_reseeding_each_epoch_makes_a_resumed_run_draw_what_an_uninterrupted_one_draws():
    uninterrupted = draws_of_epochs(1, 4)
    before_the_stop = draws_of_epochs(1, 2)
    np.random.rand(123)  # the interruption, a restart, other cells: anything may draw meanwhile
    after_the_resume = draws_of_epochs(3, 4)
    assert before_the_stop + after_the_resume == uninterrupted
    assert uninterrupted[2] != uninterrupted[3]


# ---------------------------------------------------------------- experiments and choose_weights

CONFIG = {"mode": "lstm", "num_hidden": 512, "learning_rate": 0.002}


def ship(fake_repo, file_name, content, config):
    (fake_repo / "weights" / file_name).write_bytes(content)
    return helpers.record_weights(file_name, config=config, metric=1.3, untrained_metric=4.45)


def test_save_experiment_writes_files_and_entries_with_checksums_in_one_folder(tmp_path, monkeypatch):
    log = tmp_path / "experiments.txt"
    monkeypatch.setenv(helpers.EXPERIMENT_LOG_ENV_VAR, str(log))
    folder = helpers.save_experiment("char_lm", {"char_lstm.params": write_text("mine")},
                                     {"char_lstm.params": {"config": CONFIG, "metric": np.float64(1.4)}})
    assert folder == helpers.checkpoint_dir("char_lm") / "experiment"
    assert sorted(p.name for p in folder.iterdir()) == ["char_lstm.params", "experiment.json"]
    entries = helpers.read_experiment(folder)
    assert entries == {"char_lstm.params": {"config": CONFIG, "metric": 1.4,
                                            "sha256": hashlib.sha256(b"mine").hexdigest()}}
    assert log.read_text() == f"{folder}\n"
    assert [p.name for p in folder.parent.iterdir()] == ["experiment"]  # no staging left behind


def test_a_failed_save_experiment_keeps_the_previous_experiment_whole():
    helpers.save_experiment("char_lm", {"a.params": write_text("old")}, {"a.params": {"config": {}}})

    def crash(path):
        Path(path).write_text("half")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        helpers.save_experiment("char_lm", {"a.params": crash}, {"a.params": {"config": {}}})
    folder = helpers.checkpoint_dir("char_lm")
    assert [p.name for p in folder.iterdir()] == ["experiment"]
    assert (folder / "experiment" / "a.params").read_text() == "old"


def test_save_experiment_needs_one_entry_per_file():
    with pytest.raises(ValueError, match=r"files \['a.params'\] and entries \['b.params'\] must name"):
        helpers.save_experiment("x", {"a.params": write_text("a")}, {"b.params": {}})
    assert helpers.read_experiment(helpers.experiment_folder("x")) is None


def test_choose_weights_uses_the_readers_experiment_when_its_config_matches(fake_repo, capsys):
    ship(fake_repo, "char_lstm.params", b"shipped", CONFIG)
    helpers.save_experiment("char_lm", {"char_lstm.params": write_text("mine")},
                            {"char_lstm.params": {"config": CONFIG, "metric": 1.2}})
    path, entry, source = helpers.choose_weights("char_lm", "char_lstm.params", dict(CONFIG))
    assert source == "experiment" and path.read_text() == "mine" and entry["metric"] == 1.2
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "$GENMODELS_CHECKPOINT_DIR/char_lm/experiment" in printed


def test_choose_weights_falls_back_to_the_shipped_weights_naming_the_differing_parameter(fake_repo, capsys):
    shipped = ship(fake_repo, "char_lstm.params", b"shipped", CONFIG)
    helpers.save_experiment("char_lm", {"char_lstm.params": write_text("mine")},
                            {"char_lstm.params": {"config": CONFIG, "metric": 1.2}})
    path, entry, source = helpers.choose_weights("char_lm", "char_lstm.params", {**CONFIG, "num_hidden": 256})
    assert source == "shipped" and path == fake_repo / "weights" / "char_lstm.params" and entry == shipped
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "weights/char_lstm.params" in printed and "TRAIN = True" in printed
    assert printed.count("NUM_HIDDEN = 256") == 2 and printed.count("512") == 2  # both values, both times


def test_choose_weights_names_every_differing_parameter_and_says_when_the_shipped_config_matches(
        fake_repo, capsys):
    ship(fake_repo, "char_lstm.params", b"shipped", CONFIG)
    helpers.choose_weights("char_lm", "char_lstm.params", {**CONFIG, "mode": "gru", "num_hidden": 256})
    assert capsys.readouterr().out == (
        "using the shipped weights/char_lstm.params: MODE = 'gru' (the shipped: 'lstm'), NUM_HIDDEN = 256 "
        "(the shipped: 512) differ from the shipped configuration; set TRAIN = True to train your own\n")
    helpers.choose_weights("char_lm", "char_lstm.params", dict(CONFIG))
    assert capsys.readouterr().out == "using the shipped weights/char_lstm.params (config matches)\n"


@pytest.mark.parametrize("metric", [math.nan, math.inf])
def test_choose_weights_passes_over_a_diverged_experiment(fake_repo, capsys, metric):
    ship(fake_repo, "char_lstm.params", b"shipped", CONFIG)
    helpers.save_experiment("char_lm", {"char_lstm.params": write_text("mine")},
                            {"char_lstm.params": {"config": CONFIG, "metric": metric}})
    assert helpers.choose_weights("char_lm", "char_lstm.params", CONFIG)[2] == "shipped"
    assert f"its metric is {metric} (the run diverged)" in capsys.readouterr().out


def test_choose_weights_passes_over_a_tampered_experiment(fake_repo, capsys):
    ship(fake_repo, "char_lstm.params", b"shipped", CONFIG)
    folder = helpers.save_experiment("char_lm", {"char_lstm.params": write_text("mine")},
                                     {"char_lstm.params": {"config": CONFIG}})
    (folder / "char_lstm.params").write_text("changed")
    assert helpers.choose_weights("char_lm", "char_lstm.params", CONFIG)[2] == "shipped"
    assert "its char_lstm.params does not match its checksum" in capsys.readouterr().out


def test_choose_weights_without_shipped_weights_or_experiment_is_one_clear_error():
    with pytest.raises(helpers.WeightsUnavailable, match="restore both with git checkout weights/"):
        helpers.choose_weights("char_lm", "char_lstm.params", CONFIG)
    assert not helpers.checkpoints_root().exists()  # looking for an experiment creates no folder


# ---------------------------------------------------------------- manifest errors

def test_a_truncated_manifest_is_a_clear_error_not_a_json_traceback(fake_repo):
    ship(fake_repo, "a.params", b"a", CONFIG)
    manifest = fake_repo / "weights" / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    with pytest.raises(helpers.WeightsDamaged) as caught:
        helpers.verified_weights("a.params")
    assert str(caught.value).startswith("weights/manifest.json is damaged (40 characters, not valid JSON: ")
    assert str(caught.value).endswith("restore it with git checkout weights/")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# ---------------------------------------------------------------- atomic_write

@pytest.fixture
def folder(tmp_path):
    """An empty folder of its own (tmp_path also holds the fake repository)."""
    (tmp_path / "atomic").mkdir()
    return tmp_path / "atomic"


def test_atomic_write_uses_a_new_temporary_name_for_every_call(folder):
    target = folder / "last.params"
    names = []
    for _ in range(3):
        helpers.atomic_write(target, lambda path: (names.append(Path(path).name), Path(path).write_text("x")))
    assert len(set(names)) == 3 and all(name.startswith(".last.params.") for name in names)
    assert all(name.endswith(".partial") for name in names)


def test_an_overlapping_writer_never_renames_another_writers_half_file(folder):
    target = folder / "last.params"
    started, resume = threading.Event(), threading.Event()

    def slow(path):
        Path(path).write_text("slow, first ha")
        started.set()
        resume.wait(10)
        Path(path).write_text("slow, whole")
    thread = threading.Thread(target=helpers.atomic_write, args=(target, slow))
    thread.start()
    started.wait(10)
    helpers.atomic_write(target, write_text("fast, whole"))
    assert target.read_text() == "fast, whole"
    resume.set()
    thread.join(10)
    assert target.read_text() == "slow, whole"
    assert [p.name for p in folder.iterdir()] == ["last.params"]


def write_repeatedly(target, marker, times):
    content = bytes([marker]) * 300_000
    for _ in range(times):
        helpers.atomic_write(target, lambda path: Path(path).write_bytes(content))


def test_concurrent_writers_from_several_processes_never_leave_a_partial_file(folder):
    target = folder / "shared.params"
    helpers.atomic_write(target, lambda path: Path(path).write_bytes(b"\x00" * 300_000))
    writers = [FORK.Process(target=write_repeatedly, args=(target, marker, 40)) for marker in (1, 2, 3)]
    for writer in writers:
        writer.start()
    while any(writer.is_alive() for writer in writers):
        content = target.read_bytes()
        assert len(content) == 300_000 and len(set(content)) == 1, "a partial or mixed file was visible"
    for writer in writers:
        writer.join(30)
    assert [writer.exitcode for writer in writers] == [0, 0, 0]  # no writer lost its temporary file
    assert target.read_bytes() in [bytes([marker]) * 300_000 for marker in (1, 2, 3)]
    assert [p.name for p in folder.iterdir()] == ["shared.params"]


def test_atomic_write_with_a_writer_that_writes_nothing_keeps_the_old_file(folder):
    target = folder / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="the writer of a.txt wrote nothing"):
        helpers.atomic_write(target, lambda path: None)
    assert target.read_text() == "old" and [p.name for p in folder.iterdir()] == ["a.txt"]


# ---------------------------------------------------------------- publishing (make train)

@pytest.fixture
def shipped_weights(fake_repo):
    """A weights/ folder with two shipped files and their manifest; returns its snapshot."""
    ship(fake_repo, "char_lstm.params", b"shipped lstm", CONFIG)
    ship(fake_repo, "unrolled_rnn.params", b"shipped rnn", {"hidden": 256})
    return snapshot(fake_repo / "weights")


def experiment(name="char_lm", metric=1.25, untrained=4.45, content="trained lstm", file_name="char_lstm.params"):
    return helpers.save_experiment(name, {file_name: write_text(content)},
                                   {file_name: {"config": CONFIG, "metric": metric, "untrained_metric": untrained}})


@pytest.mark.parametrize("metric, untrained, expected", [
    (math.nan, 4.45, "metric = nan is not a finite number, so the run diverged; lower LEARNING_RATE (or CLIP)"),
    (math.inf, 4.45, "metric = inf is not a finite number, so the run diverged; lower LEARNING_RATE (or CLIP)"),
    (187757.0, 4.45, "metric = 187757.0000 is no better than the untrained model's 4.4500, so training did "
                     "not help; check LEARNING_RATE (and CLIP)"),
    (4.45, 4.45, "metric = 4.4500 is no better than the untrained model's 4.4500"),
    (1.3, math.nan, "untrained_metric = nan is not a finite number"),
    (1.3, None, "its entry needs numbers \"metric\" and \"untrained_metric\""),
    ("1.3", 4.45, "its entry needs numbers \"metric\" and \"untrained_metric\""),
])
def test_publishing_refuses_a_bad_metric_and_changes_nothing(fake_repo, shipped_weights, metric, untrained,
                                                             expected):
    folder = experiment(metric=metric, untrained=untrained)
    notebook = fake_repo / "notebooks" / "02.ipynb"
    notebook.parent.mkdir()
    notebook.write_text("committed")
    with pytest.raises(run_notebooks.PublishRefused) as caught:
        run_notebooks.publish([folder], extra_files=[(folder / "char_lstm.params", notebook)])
    message = str(caught.value)
    assert message.startswith("refusing to publish into weights/ (nothing was changed): "
                              "char_lstm.params in $GENMODELS_CHECKPOINT_DIR/char_lm/experiment: ")
    assert expected in message
    assert snapshot(fake_repo / "weights") == shipped_weights  # byte-identical, nothing staged
    assert notebook.read_text() == "committed"


def test_publishing_refuses_a_run_worse_than_the_shipped_weights_unless_allowed(fake_repo, shipped_weights):
    folder = experiment(metric=1.31)  # the shipped char_lstm.params scored 1.3
    with pytest.raises(run_notebooks.PublishRefused) as caught:
        run_notebooks.publish([folder])
    assert ("char_lstm.params in $GENMODELS_CHECKPOINT_DIR/char_lm/experiment: metric = 1.3100 is worse than the "
            "1.3000 of the weights/char_lstm.params it would replace; keep those, or replace them all the same "
            "with make train ALLOW_WORSE=1") in str(caught.value)
    assert snapshot(fake_repo / "weights") == shipped_weights
    assert run_notebooks.publish([folder], allow_worse=True) == ["char_lstm.params"]
    assert helpers.verified_weights("char_lstm.params")[1]["metric"] == 1.31


@pytest.mark.parametrize("shipped_entry", [{"metric_name": "another measure"}, {"metric": None}])
def test_a_run_is_not_compared_with_weights_measured_otherwise_or_not_at_all(fake_repo, shipped_weights,
                                                                             shipped_entry):
    manifest = helpers.read_manifest()
    manifest["char_lstm.params"].update(shipped_entry)
    helpers.write_json(helpers.MANIFEST, manifest)
    assert run_notebooks.publish([experiment(metric=2.0)]) == ["char_lstm.params"]


def test_publishing_copies_files_entries_and_the_notebook_as_one_step(fake_repo, shipped_weights, tmp_path):
    folder = experiment()
    executed = tmp_path / "executed.ipynb"
    executed.write_text("new outputs")
    notebook = fake_repo / "notebooks" / "02.ipynb"
    notebook.parent.mkdir()
    notebook.write_text("old outputs")
    names = run_notebooks.publish([folder], extra_files=[(executed, notebook)], command="make train X")
    assert names == ["char_lstm.params"]
    path, entry = helpers.verified_weights("char_lstm.params")
    assert path.read_text() == "trained lstm" and notebook.read_text() == "new outputs"
    assert entry == {"config": CONFIG, "metric": 1.25, "untrained_metric": 4.45, "command": "make train X",
                     "sha256": hashlib.sha256(b"trained lstm").hexdigest()}
    manifest = json.loads((fake_repo / "weights" / "manifest.json").read_text())
    assert manifest["unrolled_rnn.params"] == json.loads(shipped_weights["manifest.json"])["unrolled_rnn.params"]
    assert sorted(snapshot(fake_repo / "weights")) == ["char_lstm.params", "manifest.json", "unrolled_rnn.params"]


def test_a_publish_interrupted_after_its_journal_is_refused_by_readers_and_finished_later(
        fake_repo, shipped_weights, monkeypatch):
    folder = experiment()
    real_replace = os.replace

    def crash_before_the_manifest(source, target):
        if Path(target) == fake_repo / "weights" / "manifest.json":
            raise KeyboardInterrupt  # the machine stops between two renames
        real_replace(source, target)
    monkeypatch.setattr(os, "replace", crash_before_the_manifest)
    with pytest.raises(KeyboardInterrupt):
        run_notebooks.publish([folder], extra_files=[])
    monkeypatch.setattr(os, "replace", real_replace)
    assert (fake_repo / "weights" / "char_lstm.params").read_bytes() == b"trained lstm"  # new file, old manifest
    with pytest.raises(helpers.WeightsDamaged, match="--finish-publish"):
        helpers.verified_weights("char_lstm.params")
    assert run_notebooks.main(["--finish-publish"]) == 0
    path, entry = helpers.verified_weights("char_lstm.params")
    assert path.read_bytes() == b"trained lstm" and entry["metric"] == 1.25
    assert not any(p.name.endswith(".partial") or p.name.startswith(".publish")
                   for p in (fake_repo / "weights").iterdir())


def test_a_publish_that_fails_while_staging_leaves_weights_byte_identical(fake_repo, shipped_weights, monkeypatch):
    folder = experiment()

    def disk_full(*args):
        raise OSError("No space left on device")
    monkeypatch.setattr(run_notebooks.helpers, "write_json", disk_full)  # the journal cannot be written
    with pytest.raises(OSError, match="No space left"):
        run_notebooks.publish([folder])
    assert snapshot(fake_repo / "weights") == shipped_weights


def test_publishing_over_a_damaged_manifest_is_refused_with_the_fix(fake_repo, shipped_weights):
    manifest = fake_repo / "weights" / "manifest.json"
    manifest.write_text("{\n  \"char_lstm.params\": {")
    before = snapshot(fake_repo / "weights")
    with pytest.raises(helpers.WeightsDamaged, match="restore it with git checkout weights/"):
        run_notebooks.publish([experiment()])
    assert snapshot(fake_repo / "weights") == before


def test_an_experiment_folder_without_its_record_is_refused(fake_repo, shipped_weights, tmp_path):
    with pytest.raises(run_notebooks.PublishRefused, match="holds no experiment"):
        run_notebooks.publish([tmp_path])
    assert snapshot(fake_repo / "weights") == shipped_weights


# ---------------------------------------------------------------- run_notebooks end to end, with a tiny notebook

def tiny_notebook(path, metric):
    """A notebook that, with TRAIN = True, saves an experiment with `metric`, and prints its cwd."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell("TRAIN = False")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell("import os, helpers\nprint('cwd', os.getcwd())"),
        nbformat.v4.new_code_cell(
            "if TRAIN:\n"
            "    helpers.save_experiment('tiny', {'tiny.params': lambda p: open(p, 'w').write('tiny')},\n"
            f"        {{'tiny.params': {{'config': {{}}, 'metric': float('{metric}'), 'untrained_metric': 4.0}}}})\n"
            "print('TRAIN is', TRAIN)"),
    ]
    nbformat.write(notebook, path)
    return path


def test_make_train_publishes_a_good_run_and_refuses_a_diverged_one(fake_repo, shipped_weights, tmp_path,
                                                                     monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # started from anywhere: the notebook still runs in notebooks/
    diverged = tiny_notebook(tmp_path / "diverged.ipynb", "nan")
    committed = diverged.read_bytes()
    assert run_notebooks.main(["--train", str(diverged)]) == 1
    assert "metric = nan is not a finite number" in capsys.readouterr().err
    assert snapshot(fake_repo / "weights") == shipped_weights and diverged.read_bytes() == committed

    good = tiny_notebook(tmp_path / "good.ipynb", "1.5")
    assert run_notebooks.main(["--train", str(good)]) == 0
    path, entry = helpers.verified_weights("tiny.params")
    assert path.read_text() == "tiny" and entry["metric"] == 1.5
    assert entry["command"] == "make train NOTEBOOK=notebooks/good.ipynb"
    cells = nbformat.read(good, as_version=4).cells
    assert not any("injected-parameters" in cell.metadata.get("tags", []) for cell in cells)
    assert cells[1].outputs[0]["text"] == f"cwd {run_notebooks.NOTEBOOKS}\n"
    assert cells[2].outputs[0]["text"] == "TRAIN is True\n"


def test_make_train_refuses_a_run_worse_than_the_shipped_weights_and_allow_worse_publishes_it(
        fake_repo, shipped_weights, tmp_path, capsys):
    ship(fake_repo, "tiny.params", b"shipped tiny", {})  # metric 1.3
    shipped = snapshot(fake_repo / "weights")
    worse = tiny_notebook(tmp_path / "worse.ipynb", "1.5")
    assert run_notebooks.main(["--train", str(worse)]) == 1
    assert "metric = 1.5000 is worse than the 1.3000 of the weights/tiny.params" in capsys.readouterr().err
    assert snapshot(fake_repo / "weights") == shipped
    assert run_notebooks.main(["--train", "--allow-worse", str(worse)]) == 0
    assert helpers.verified_weights("tiny.params")[1]["metric"] == 1.5


def test_in_place_runs_the_default_mode_and_saves_the_tidied_notebook(fake_repo, shipped_weights, tmp_path):
    notebook = tiny_notebook(tmp_path / "tiny.ipynb", "1.5")
    assert run_notebooks.main(["--in-place", str(notebook)]) == 0
    cells = nbformat.read(notebook, as_version=4).cells
    assert [cell.source for cell in cells][0] == "TRAIN = False" and len(cells) == 3
    assert cells[2].outputs[0]["text"] == "TRAIN is False\n"
    assert snapshot(fake_repo / "weights") == shipped_weights
    assert helpers.read_experiment(helpers.experiment_folder("tiny")) is None


# ---------------------------------------------------------------- images

def synthetic_picture(height=96, width=96):
    rows, columns = np.mgrid[0:height, 0:width]
    picture = np.stack([columns * 255 // width, rows * 255 // height, (rows + columns) * 255 // (height + width)],
                       axis=-1).astype(np.uint8)
    cv2.circle(picture, (width // 2, height // 2), height // 5, (0, 0, 255), -1)
    return picture


def jpeg_bytes(progressive=False):
    ok, encoded = cv2.imencode(".jpg", synthetic_picture(),
                               [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])
    assert ok
    return encoded.tobytes()


def damaged_jpegs(progressive):
    """Ways a JPEG goes bad: cut short (as an interrupted download), the lower half overwritten."""
    whole = jpeg_bytes(progressive)
    half = len(whole) // 2
    noise = np.random.default_rng(0).integers(0, 256, len(whole), dtype=np.uint8).tobytes()
    return {
        "truncated": whole[:int(len(whole) * 0.6)],
        "truncated-zero-padded": whole[:half] + bytes(len(whole) - half),
        "truncated-then-end-marker": whole[:int(len(whole) * 0.6)] + b"\xff\xd9",
        "garbage-lower-half": whole[:half] + noise[:len(whole) - half - 2] + b"\xff\xd9",
        "garbage-lower-half-no-end": whole[:half] + noise[:len(whole) - half],
        "zeroed-lower-half": whole[:half] + bytes(len(whole) - half - 2) + b"\xff\xd9",
    }


@pytest.mark.parametrize("progressive", [False, True])
def test_partly_corrupt_jpegs_are_skipped_and_counted_and_whole_ones_load(tmp_path, progressive, capfd):
    for name, data in damaged_jpegs(progressive).items():
        (tmp_path / f"{name}.jpg").write_bytes(data)
    (tmp_path / "whole.jpg").write_bytes(jpeg_bytes(progressive))
    (tmp_path / "whole-with-trailing-bytes.jpg").write_bytes(jpeg_bytes(progressive) + b"camera notes")
    (tmp_path / "not-an-image.jpg").write_bytes(b"garbage")
    images, skipped = helpers.load_images(tmp_path)
    assert images.shape == (2, 3, 64, 64)
    assert sorted(path.stem for path in skipped) == sorted([*damaged_jpegs(progressive), "not-an-image"])
    assert "Corrupt JPEG" not in capfd.readouterr().err  # libjpeg's warnings are read, not shown


def test_jpeg_damage_names_the_problem():
    whole = jpeg_bytes()
    assert helpers.jpeg_damage(whole) is None
    assert helpers.jpeg_damage(whole[:len(whole) // 2]) == "truncated: no end-of-image marker after the image data"
    assert helpers.jpeg_damage(whole, "Corrupt JPEG data: premature end of data segment\n") == (
        "damaged: Corrupt JPEG data: premature end of data segment")


def test_a_whole_jpeg_loads_exactly_as_opencv_decodes_it(tmp_path):
    path = tmp_path / "whole.jpg"
    path.write_bytes(jpeg_bytes())
    decoded = cv2.cvtColor(cv2.resize(cv2.imdecode(np.frombuffer(jpeg_bytes(), np.uint8), cv2.IMREAD_COLOR),
                                      (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    assert np.array_equal(helpers.load_image(path), decoded.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1)


def test_png_alpha_is_composited_onto_white(tmp_path):
    bgra = np.zeros((64, 64, 4), np.uint8)
    bgra[:, :, 2] = 255  # red
    bgra[:32, :, 3] = 0  # top half fully transparent
    bgra[32:, :, 3] = 255  # bottom half opaque
    bgra[32:, :8, 3] = 128  # a half-transparent strip
    assert cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    image = helpers.load_image(tmp_path / "alpha.png")  # CHW, RGB, in [-1, 1]
    assert helpers.ALPHA_BACKGROUND_RGB == (255, 255, 255)
    assert np.all(image[:, :32] == 1.0)  # transparent: white
    assert np.all(image[0, 32:] == 1.0) and np.all(image[1:, 32:, 8:] == -1.0)  # opaque: red
    # half transparent: green and blue are 255 * (1 - 128/255) = 127 of white's 255
    assert np.allclose(image[1:, 32:, :8], 127 / 127.5 - 1, rtol=0, atol=1e-6)


def test_grey_and_16_bit_pngs_load_as_rgb(tmp_path):
    assert cv2.imwrite(str(tmp_path / "grey.png"), np.full((64, 64), 255, np.uint8))
    assert cv2.imwrite(str(tmp_path / "deep.png"), np.full((64, 64, 3), 65535, np.uint16))
    for name in ("grey.png", "deep.png"):
        image = helpers.load_image(tmp_path / name)
        assert image.shape == (3, 64, 64) and np.all(image == 1.0)


def test_truncated_png_is_skipped_without_noise(tmp_path, capfd):
    ok, encoded = cv2.imencode(".png", synthetic_picture())
    (tmp_path / "cut.png").write_bytes(encoded.tobytes()[:len(encoded) // 2])
    assert helpers.load_image(tmp_path / "cut.png") is None
    assert "libpng" not in capfd.readouterr().err


def write_png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), synthetic_picture(16, 16))
    return path


def test_symlinked_sub_folders_are_followed_and_loops_are_listed_once(tmp_path):
    images = tmp_path / "images"
    elsewhere = tmp_path / "elsewhere"
    write_png(images / "a.png")
    write_png(elsewhere / "b.png")
    (images / "linked").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "back-up").symlink_to(images, target_is_directory=True)  # a loop
    (images / "again").symlink_to(elsewhere, target_is_directory=True)  # a second way in
    listed = helpers.list_images(images)
    assert [path.name for path in listed] == ["a.png", "b.png"]
    assert len({path.resolve() for path in listed}) == 2


def test_check_image_folder_gives_one_sentence_per_problem(tmp_path):
    image = write_png(tmp_path / "faces" / "one.png")
    assert helpers.check_image_folder(tmp_path / "faces") == [image]
    cases = [
        (image, "is a file, not a folder; set IMAGE_FOLDER to the folder that holds your images, "
                f"e.g. {str(image.parent)!r}"),
        (tmp_path / "missing", "does not exist; set IMAGE_FOLDER to a folder of .jpg or .png images"),
    ]
    for folder, expected in cases:
        with pytest.raises(helpers.ParameterError) as caught:
            helpers.check_image_folder(folder)
        assert str(caught.value) == f"IMAGE_FOLDER = {str(folder)!r} {expected}"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(helpers.ParameterError, match="holds no .jpg, .jpeg or .png files"):
        helpers.check_image_folder(empty)
    with pytest.raises(helpers.ParameterError) as caught:
        helpers.check_image_folder(tmp_path / "faces", batch_size=64)
    assert str(caught.value).endswith("holds 1 images, fewer than one batch (BATCH_SIZE = 64); set "
                                      "BATCH_SIZE to 1 or less, or add images")


def test_list_images_on_a_file_says_it_is_not_a_folder(tmp_path):
    image = write_png(tmp_path / "one.png")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        helpers.list_images(image)


# ---------------------------------------------------------------- parameter ranges, diverging losses, fresh folders

@pytest.mark.parametrize("value, expected", [
    (-1, "BATCH_SIZE = -1 must be a whole number of at least 1; try 64"),
    (0, "BATCH_SIZE = 0 must be a whole number of at least 1; try 64"),
    (2.5, "BATCH_SIZE = 2.5 must be a whole number of at least 1; try 64"),
    ("64", "BATCH_SIZE = '64' must be a whole number of at least 1; try 64"),
    (True, "BATCH_SIZE = True must be a whole number of at least 1; try 64"),
])
def test_check_range_names_the_parameter_value_range_and_fix(value, expected):
    with pytest.raises(helpers.ParameterError) as caught:
        helpers.check_range("BATCH_SIZE", value, minimum=1, whole=True, suggestion="64")
    assert str(caught.value) == expected


def test_check_range_accepts_values_inside_and_words_other_ranges():
    assert helpers.check_range("BATCH_SIZE", 64, minimum=1, whole=True) == 64
    assert helpers.check_range("TEMPERATURE", np.float32(0.5), minimum=0.01, maximum=5) == 0.5
    with pytest.raises(helpers.ParameterError, match=r"^DROPOUT = 1.5 must be a number from 0 to 0.9$"):
        helpers.check_range("DROPOUT", 1.5, minimum=0, maximum=0.9)
    with pytest.raises(helpers.ParameterError, match=r"^TEMPERATURE = nan must be a number of at most 5$"):
        helpers.check_range("TEMPERATURE", math.nan, maximum=5)


def test_check_loss_stops_a_non_finite_or_exploding_loss_naming_the_knobs():
    assert helpers.check_loss(np.float32(2.5), "epoch 1", explode_above=10) == 2.5
    with pytest.raises(helpers.TrainingDiverged) as caught:
        helpers.check_loss(math.nan, "epoch 2, batch 7", LEARNING_RATE=1e6, CLIP=1.0)
    assert str(caught.value) == (
        "the training loss is not a finite number (nan) at epoch 2, batch 7, so the run diverged; lower "
        "LEARNING_RATE (now 1000000.0) or CLIP (now 1.0) in the parameters cell and train again with "
        "FRESH_START = True")
    with pytest.raises(helpers.TrainingDiverged, match=r"exploded past 44.5 \(187757\) at epoch 3"):
        helpers.check_loss(187757.0, "epoch 3", explode_above=44.5, LEARNING_RATE=0.1)


def test_the_weights_folder_can_be_pointed_elsewhere_and_finish_publish_completes_a_journal(tmp_path):
    """GENMODELS_WEIGHTS_DIR moves weights/ (for tests); the command line finishes a journal there."""
    import subprocess

    weights = tmp_path / "w"
    weights.mkdir()
    (weights / ".a.params.1-x.partial").write_text("new a")
    (weights / ".manifest.json.1-y.partial").write_text("{}\n")
    (weights / helpers.PUBLISH_JOURNAL).write_text(json.dumps({"moves": [
        [str(weights / ".a.params.1-x.partial"), str(weights / "a.params")],
        [str(weights / ".manifest.json.1-y.partial"), str(weights / "manifest.json")]]}))
    env = {**os.environ, "GENMODELS_WEIGHTS_DIR": str(weights)}
    result = subprocess.run([sys.executable, str(Path(run_notebooks.__file__)), "--finish-publish"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "finished an interrupted publish" in result.stdout
    assert snapshot(weights) == {"a.params": b"new a", "manifest.json": b"{}\n"}
