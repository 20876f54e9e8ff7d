"""Tests of `make train`'s publishing (scripts/run_notebooks.py): a finished run goes into weights/
only when its metric is finite, better than untrained and not worse than the shipped weights, and
then as one step; an interrupted publish is refused by readers and finished later.

Everything runs in a fake repository root and a fake weights/ under tmp_path.
"""
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import helpers  # first: it sets the thread count and engine before mxnet is imported
import storage

import nbformat
import pytest

import run_notebooks

CONFIG = {"mode": "lstm", "num_hidden": 512, "learning_rate": 0.002}


@pytest.fixture(autouse=True)
def fake_repo(fake_weights_repo):
    return fake_weights_repo


def snapshot(folder):
    """{relative path: bytes} of every file under `folder`, hidden ones included."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(Path(folder).rglob("*"))
            if path.is_file() and not path.name.startswith(".lock")}


def ship(repo, file_name, content, config):
    (repo / "weights" / file_name).write_bytes(content)
    manifest = storage.read_manifest()
    manifest[file_name] = {"config": config, "metric": 1.3, "untrained_metric": 4.45,
                           "sha256": hashlib.sha256(content).hexdigest()}
    storage.write_json(storage.MANIFEST, manifest)


@pytest.fixture
def shipped_weights(fake_repo):
    ship(fake_repo, "char_lstm.params", b"shipped lstm", CONFIG)
    ship(fake_repo, "unrolled_rnn.params", b"shipped rnn", {"hidden": 256})
    return snapshot(fake_repo / "weights")


def experiment(metric=1.25, untrained=4.45, content="trained lstm"):
    return storage.save_experiment("char_lm", {"char_lstm.params": lambda path: Path(path).write_text(content)},
                                   {"char_lstm.params": {"config": CONFIG, "metric": metric,
                                                         "untrained_metric": untrained}})


@pytest.mark.parametrize("metric, untrained, named", [
    (math.nan, 4.45, "metric = nan"), (4.45, 4.45, "metric = 4.4500"), (1.3, None, "untrained_metric = None")])
def test_a_bad_metric_is_refused_and_nothing_changes(fake_repo, shipped_weights, metric, untrained, named):
    with pytest.raises(run_notebooks.PublishRefused, match=named):
        run_notebooks.publish([experiment(metric=metric, untrained=untrained)])
    assert snapshot(fake_repo / "weights") == shipped_weights


def test_a_run_worse_than_the_shipped_weights_is_refused_unless_allowed(fake_repo, shipped_weights):
    folder = experiment(metric=1.31)  # the shipped char_lstm.params scored 1.3
    with pytest.raises(run_notebooks.PublishRefused, match="ALLOW_WORSE=1"):
        run_notebooks.publish([folder])
    assert snapshot(fake_repo / "weights") == shipped_weights
    assert run_notebooks.publish([folder], allow_worse=True) == ["char_lstm.params"]
    assert storage.verified_weights("char_lstm.params")[1]["metric"] == 1.31


def test_a_run_is_not_compared_with_weights_measured_another_way(fake_repo, shipped_weights):
    manifest = storage.read_manifest()
    manifest["char_lstm.params"]["metric_name"] = "another measure"
    storage.write_json(storage.MANIFEST, manifest)
    assert run_notebooks.publish([experiment(metric=2.0)]) == ["char_lstm.params"]


def test_publishing_copies_the_file_its_entry_and_the_notebook_as_one_step(fake_repo, shipped_weights, tmp_path):
    executed, notebook = tmp_path / "executed.ipynb", fake_repo / "02.ipynb"
    executed.write_text("new outputs")
    notebook.write_text("old outputs")
    assert run_notebooks.publish([experiment()], extra_files=[(executed, notebook)], command="make train X") \
        == ["char_lstm.params"]
    path, entry = storage.verified_weights("char_lstm.params")
    assert path.read_text() == "trained lstm" and notebook.read_text() == "new outputs"
    assert entry["command"] == "make train X" and entry["metric"] == 1.25
    assert storage.read_manifest()["unrolled_rnn.params"] == \
        json.loads(shipped_weights["manifest.json"])["unrolled_rnn.params"]
    assert sorted(snapshot(fake_repo / "weights")) == ["char_lstm.params", "manifest.json", "unrolled_rnn.params"]


def test_an_interrupted_publish_is_refused_by_readers_and_finished_from_the_command_line(
        fake_repo, shipped_weights, monkeypatch):
    real_replace = os.replace

    def crash_before_the_manifest(source, target):
        if Path(target) == storage.MANIFEST:
            raise KeyboardInterrupt  # the machine stops between two renames
        real_replace(source, target)
    monkeypatch.setattr(os, "replace", crash_before_the_manifest)
    with pytest.raises(KeyboardInterrupt):
        run_notebooks.publish([experiment()])
    monkeypatch.setattr(os, "replace", real_replace)
    with pytest.raises(storage.WeightsDamaged, match="--finish-publish"):
        storage.verified_weights("char_lstm.params")
    env = {**os.environ, "GENMODELS_WEIGHTS_DIR": str(storage.WEIGHTS_DIR)}
    result = subprocess.run([sys.executable, run_notebooks.__file__, "--finish-publish"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    path, entry = storage.verified_weights("char_lstm.params")
    assert path.read_bytes() == b"trained lstm" and entry["metric"] == 1.25
    assert not [p for p in (fake_repo / "weights").iterdir() if p.name.endswith(".partial")]


def test_finishing_a_publish_waits_for_the_weights_lock(fake_repo, shipped_weights, capsys):
    (storage.WEIGHTS_DIR / storage.PUBLISH_JOURNAL).write_text(json.dumps({"moves": []}))
    with storage.exclusive_run(storage.WEIGHTS_DIR):  # a make train publishing right now
        assert run_notebooks.main(["--finish-publish"]) == 1
    assert "CheckpointInUse" not in capsys.readouterr().err  # one sentence, not a traceback
    assert (storage.WEIGHTS_DIR / storage.PUBLISH_JOURNAL).exists()
    assert run_notebooks.main(["--finish-publish"]) == 0
    assert not (storage.WEIGHTS_DIR / storage.PUBLISH_JOURNAL).exists()


def test_a_publish_that_fails_while_staging_leaves_weights_byte_identical(fake_repo, shipped_weights, monkeypatch):
    def disk_full(*args):
        raise OSError("No space left on device")
    monkeypatch.setattr(storage, "write_json", disk_full)  # the journal cannot be written
    with pytest.raises(OSError):
        run_notebooks.publish([experiment()])
    assert snapshot(fake_repo / "weights") == shipped_weights


def test_a_damaged_manifest_or_a_folder_without_a_run_is_refused(fake_repo, shipped_weights, tmp_path):
    with pytest.raises(run_notebooks.PublishRefused, match="holds no experiment"):
        run_notebooks.publish([tmp_path])
    storage.MANIFEST.write_text('{\n  "char_lstm.params": {')
    before = snapshot(fake_repo / "weights")
    with pytest.raises(storage.WeightsDamaged, match="git checkout weights/"):
        run_notebooks.publish([experiment()])
    assert snapshot(fake_repo / "weights") == before


def tiny_notebook(path, metric):
    """A notebook that, with TRAIN = True, saves an experiment with `metric`, and prints its cwd."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell("TRAIN = False")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell("import os, helpers, storage\nprint('cwd', os.getcwd())"),
                      nbformat.v4.new_code_cell(
                          "if TRAIN:\n"
                          "    storage.save_experiment('tiny', {'tiny.params': lambda p: open(p, 'w').write('tiny')},\n"
                          f"        {{'tiny.params': {{'config': {{}}, 'metric': float('{metric}'), "
                          "'untrained_metric': 4.0}})\nprint('TRAIN is', TRAIN)")]
    nbformat.write(notebook, path)
    return path


def test_make_train_publishes_a_good_run_and_refuses_a_diverged_one(fake_repo, shipped_weights, tmp_path,
                                                                     monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # started from anywhere: the notebook still runs in notebooks/
    diverged = tiny_notebook(tmp_path / "diverged.ipynb", "nan")
    committed = diverged.read_bytes()
    assert run_notebooks.main(["--train", str(diverged)]) == 1
    assert "metric = nan" in capsys.readouterr().err
    assert snapshot(fake_repo / "weights") == shipped_weights and diverged.read_bytes() == committed
    good = tiny_notebook(tmp_path / "good.ipynb", "1.5")
    assert run_notebooks.main(["--train", str(good)]) == 0
    path, entry = storage.verified_weights("tiny.params")
    assert path.read_text() == "tiny" and entry["command"] == "make train NOTEBOOK=notebooks/good.ipynb"
    cells = nbformat.read(good, as_version=4).cells
    assert not any("injected-parameters" in cell.metadata.get("tags", []) for cell in cells)
    assert cells[1].outputs[0]["text"] == f"cwd {run_notebooks.NOTEBOOKS}\n"
    assert cells[2].outputs[0]["text"] == "TRAIN is True\n"


def test_in_place_runs_the_default_mode_and_touches_no_weights(fake_repo, shipped_weights, tmp_path):
    notebook = tiny_notebook(tmp_path / "tiny.ipynb", "1.5")
    assert run_notebooks.main(["--in-place", str(notebook)]) == 0
    cells = nbformat.read(notebook, as_version=4).cells
    assert len(cells) == 3 and cells[2].outputs[0]["text"] == "TRAIN is False\n"
    assert snapshot(fake_repo / "weights") == shipped_weights
