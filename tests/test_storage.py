"""Tests of notebooks/storage.py: checkpoints a run resumes from, the lock that keeps one run per
folder, the reader's finished runs, choosing weights, the shipped weights' checks, and writing
files that are never half-written, including on a full or read-only disk.

Everything runs in a fake repository root under tmp_path; the disk tests mount a small tmpfs (root
only, as in CI; skipped elsewhere).
"""
import json
import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import helpers  # first: it sets the thread count and engine before mxnet is imported
import storage

import mxnet as mx
import numpy as np
import pytest

FORK = multiprocessing.get_context("fork")  # children reuse the imported modules: no second mxnet start
CONFIG = {"mode": "lstm", "num_hidden": 8, "learning_rate": 0.002}


@pytest.fixture(autouse=True)
def fake_repo(fake_weights_repo):
    return fake_weights_repo


def text_writer(text):
    return lambda path: Path(path).write_text(text)


def net(hidden=8):
    network = mx.gluon.nn.Dense(hidden, in_units=4)
    network.initialize()
    return network


def ship(file_name, network, config):
    network.save_parameters(str(storage.WEIGHTS_DIR / file_name))
    storage.write_json(storage.MANIFEST, {file_name: {"config": config, "metric": 1.3,
                                                      "sha256": storage.sha256_of(storage.WEIGHTS_DIR / file_name)}})


# ---------------------------------------------------------------- checkpoints

def test_a_saved_epoch_is_read_back_and_only_the_newest_two_and_the_best_are_kept(tmp_path):
    folder = storage.checkpoint_dir("run")
    for epoch in range(1, 6):
        storage.save_epoch(folder, epoch, {"model.params": text_writer(f"epoch {epoch}")},
                           {"losses": [1.0] * epoch, "best_epoch": 2})
    assert sorted(path.name for path in folder.glob("epoch-*")) == ["epoch-0002", "epoch-0004", "epoch-0005"]
    path, record = storage.latest_epoch(folder)
    assert (path / "model.params").read_text() == "epoch 5" and record["epoch"] == 5 and len(record["losses"]) == 5


def test_a_writer_that_fails_leaves_the_previous_epoch_as_the_latest(tmp_path):
    folder = storage.checkpoint_dir("run")
    storage.save_epoch(folder, 1, {"model.params": text_writer("one")}, {})

    def crash(path):
        Path(path).write_text("half")
        raise KeyboardInterrupt  # Ctrl-C, or a killed kernel, in the middle of a save
    with pytest.raises(KeyboardInterrupt):
        storage.save_epoch(folder, 2, {"model.params": crash}, {})
    assert storage.latest_epoch(folder)[1]["epoch"] == 1
    assert [path.name for path in folder.iterdir()] == ["epoch-0001"]  # no temporary folder left


def test_a_damaged_newest_epoch_is_skipped_for_the_one_before_with_a_line(tmp_path, capsys):
    folder = storage.checkpoint_dir("run")
    for epoch in (1, 2):
        storage.save_epoch(folder, epoch, {"model.params": text_writer(f"epoch {epoch}")}, {})
    (folder / "epoch-0002" / "model.params").write_text("truncat")
    assert storage.latest_epoch(folder)[1]["epoch"] == 1
    assert "epoch-0002" in capsys.readouterr().out


def test_resume_loads_the_networks_and_refuses_other_parameters_or_too_many_epochs(tmp_path):
    folder, saved = storage.checkpoint_dir("run"), net()
    storage.save_epoch(folder, 3, {"model.params": saved.save_parameters}, {"config": {**CONFIG, "epochs": 3}})
    loaded = net()
    record = storage.resume(folder, {"model": loaded}, {}, {**CONFIG, "epochs": 5}, 5)
    assert record["epoch"] == 3 and np.array_equal(loaded.weight.data().asnumpy(), saved.weight.data().asnumpy())
    with pytest.raises(helpers.ParameterError, match="NUM_HIDDEN"):
        storage.resume(folder, {"model": loaded}, {}, {**CONFIG, "num_hidden": 16}, 5)
    with pytest.raises(helpers.ParameterError, match="EPOCHS = 2"):
        storage.resume(folder, {"model": loaded}, {}, CONFIG, 2)


def test_a_checkpoint_name_cannot_leave_the_checkpoint_folder():
    with pytest.raises(helpers.ParameterError, match="'../elsewhere'"):
        storage.checkpoint_dir("../elsewhere")


def hold(folder, started):
    with storage.exclusive_run(folder):
        Path(started).write_text("holding")
        time.sleep(60)


def test_a_second_run_is_told_the_first_holds_the_folder_until_it_dies(tmp_path):
    folder = storage.checkpoint_dir("run")
    with storage.exclusive_run(folder):  # the same process cannot enter twice
        with pytest.raises(storage.CheckpointInUse, match=str(os.getpid())):
            with storage.exclusive_run(folder):
                pass
    holder = FORK.Process(target=hold, args=(folder, tmp_path / "started"))
    holder.start()
    while not (tmp_path / "started").exists():
        time.sleep(0.01)
    with pytest.raises(storage.CheckpointInUse, match=str(holder.pid)):
        with storage.training_run("run", fresh=True):
            pass
    holder.kill()  # a killed run frees the lock: the system drops it with the process
    holder.join()
    with storage.training_run("run", fresh=True) as again:
        assert again == folder


def test_a_fresh_start_discards_the_epochs_but_keeps_the_finished_run(tmp_path):
    storage.save_experiment("run", {"a.params": text_writer("mine")}, {"a.params": {"config": CONFIG}})
    storage.save_epoch(storage.checkpoint_dir("run"), 1, {"model.params": text_writer("one")}, {})
    with storage.training_run("run", fresh=True) as folder:
        assert sorted(path.name for path in folder.iterdir() if not path.name.startswith(".lock")) == ["experiment"]


def test_epoch_seeds_differ_between_epochs_and_runs():
    seeds = {storage.helpers.epoch_seed(seed, epoch) for seed in (0, 1) for epoch in range(50)}
    assert len(seeds) == 100 and all(0 <= seed < 2 ** 31 - 1 for seed in seeds)


# ---------------------------------------------------------------- finished runs and choosing weights

def test_a_finished_run_is_chosen_when_its_parameters_match_else_the_shipped_weights(tmp_path, capsys):
    ship("a.params", net(), CONFIG)
    storage.save_experiment("run", {"a.params": net().save_parameters}, {"a.params": {"config": CONFIG, "metric": 1.2}})
    path, entry, source = storage.choose_weights("run", "a.params", CONFIG)
    assert source == "experiment" and entry["metric"] == 1.2 and path.parent.name == "experiment"
    path, entry, source = storage.choose_weights("run", "a.params", {**CONFIG, "num_hidden": 16})
    assert source == "shipped" and path == storage.WEIGHTS_DIR / "a.params"
    said = capsys.readouterr().out.splitlines()[-1]
    assert "NUM_HIDDEN = 16" in said and "8" in said  # both values named


@pytest.mark.parametrize("damage", ["diverged", "tampered", "unreadable record"])
def test_a_diverged_tampered_or_unreadable_finished_run_is_passed_over(tmp_path, damage, capsys):
    ship("a.params", net(), CONFIG)
    metric = float("nan") if damage == "diverged" else 1.2
    folder = storage.save_experiment("run", {"a.params": net().save_parameters},
                                     {"a.params": {"config": CONFIG, "metric": metric}})
    if damage == "tampered":
        (folder / "a.params").write_bytes(b"x")
    if damage == "unreadable record":
        (folder / storage.EXPERIMENT_RECORD).write_text("{")
    assert storage.choose_weights("run", "a.params", CONFIG)[2] == "shipped"
    assert "not the run saved in" in capsys.readouterr().out


def test_shipped_weights_are_checked_against_the_manifest(fake_repo):
    with pytest.raises(storage.WeightsUnavailable, match="a.params"):
        storage.verified_weights("a.params")
    ship("a.params", net(), CONFIG)
    (storage.WEIGHTS_DIR / "a.params").write_bytes(b"changed")
    with pytest.raises(storage.WeightsDamaged, match="a.params"):
        storage.verified_weights("a.params")
    storage.MANIFEST.write_text("{")
    with pytest.raises(storage.WeightsDamaged, match="manifest.json"):
        storage.read_manifest()
    assert storage.shipped_config("a.params") == {}


def test_weights_that_pass_the_checksum_but_do_not_fit_are_one_sentence(fake_repo):
    ship("a.params", net(hidden=8), CONFIG)
    path, _ = storage.verified_weights("a.params")
    with pytest.raises(storage.WeightsDamaged, match="a.params does not fit") as caught:
        storage.load_weights(net(hidden=16), path)
    assert "Traceback" not in str(caught.value) and "\n" not in str(caught.value)


# ---------------------------------------------------------------- files never half-written, full disks

def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = storage.write_json(tmp_path / "a" / "b.json", {"x": np.float32(1.5)})
    assert json.loads(target.read_text()) == {"x": 1.5}
    with pytest.raises(RuntimeError):
        storage.atomic_write(target, lambda path: (Path(path).write_text("half"), (_ for _ in ()).throw(RuntimeError())))
    assert json.loads(target.read_text()) == {"x": 1.5} and [p.name for p in target.parent.iterdir()] == ["b.json"]


@pytest.fixture
def small_disk(tmp_path):
    """A 256 kB tmpfs mounted at tmp_path/disk (needs root, as in CI), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.parametrize("problem", ["full", "read-only"])
def test_a_full_or_read_only_disk_is_one_sentence_and_the_previous_checkpoint_stays(small_disk, monkeypatch,
                                                                                     problem):
    monkeypatch.setenv(storage.CHECKPOINT_ENV_VAR, str(small_disk))
    folder = storage.checkpoint_dir("run")
    storage.save_epoch(folder, 1, {"model.params": net(hidden=2).save_parameters}, {})
    if problem == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(storage.CannotWrite, match="MB free") as caught:
        storage.save_epoch(folder, 2, {"model.params": net(hidden=20000).save_parameters}, {})  # 0.3 MB
    reason = "the disk is full" if problem == "full" else "it is read-only"
    assert f"{folder}: {reason}" in str(caught.value)
    assert storage.latest_epoch(folder)[1]["epoch"] == 1
