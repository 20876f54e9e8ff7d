"""A training run killed at any moment resumes from its last complete epoch and ends as if never killed.

Each run is a real process running notebook 2's own `fit` on a tiny model. One run is killed
(SIGKILL: no clean-up of any kind) in the middle of an epoch, another in the middle of writing a
checkpoint (after the weights file, before the trainer state); running the same command again
must resume and end with weights byte-identical to a run that was never interrupted. weights/
and its manifest must not change at all.
"""
import hashlib
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import helpers
import storage

RUN = textwrap.dedent("""
    import os, signal, sys
    sys.path[:0] = [{notebooks!r}, {scripts!r}]
    import helpers, storage
    from notebook_code import notebook_namespace

    folder, kill_at = sys.argv[1], sys.argv[2]
    vocabulary = storage.read_manifest()["char_lstm.params"]["vocabulary"]
    notebook = notebook_namespace("02_char_language_model.ipynb", also=("loss_function", "device"),
                                  index_to_char=vocabulary[:12], vocab_size=12, SEQ_LENGTH=10, BATCH_SIZE=4,
                                  char_to_index={{char: index for index, char in enumerate(vocabulary[:12])}})
    mx, nd = notebook["mx"], notebook["nd"]
    mx.random.seed(0)
    data = nd.array(mx.nd.random.randint(1, 12, shape=(81, 4)).asnumpy())

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if kill_at == "mid-epoch":  # the third batch of epoch 2
        train_one_epoch, calls = notebook["train_one_epoch"], []

        class DyingProgress:
            def __init__(self, progress):
                self.progress, self.batches = progress, 0
            def update(self, count):
                self.batches += count
                if len(calls) == 2 and self.batches == 3:
                    die()
                self.progress.update(count)
            def __getattr__(self, name):
                return getattr(self.progress, name)

        def dying_epoch(model, trainer, data, seq_length, batch_size, progress, offset=0):
            calls.append(1)
            return train_one_epoch(model, trainer, data, seq_length, batch_size, DyingProgress(progress), offset)
        notebook["train_one_epoch"] = dying_epoch
    if kill_at == "mid-checkpoint":  # epoch 2's weights written, its trainer state not yet
        save_epoch = storage.save_epoch

        def dying_save(folder, epoch, writers, record):
            if epoch == 2:
                writers = dict(writers, **{{"trainer.states": lambda path: die()}})
            return save_epoch(folder, epoch, writers, record)
        storage.save_epoch = dying_save

    helpers.seed_everything(1)
    model = notebook["GluonRNNModel"]("lstm", 12, num_embed=4, num_hidden=8, num_layers=2, dropout=0.1)
    model.initialize(mx.init.Xavier())
    record = notebook["fit"](model, data, data, 3, helpers.Path(folder), {{"mode": "lstm", "sizes": "tiny"}})
    model.save_parameters(os.path.join(folder, "final.params"))
    print("epochs", len(record["train"]))
""")


def run(script, folder, kill_at="never"):
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(script), str(folder), kill_at], env=environment,
                          capture_output=True, text=True, timeout=300)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shipped_state():
    return {path.name: digest(path) for path in sorted(storage.WEIGHTS_DIR.iterdir()) if path.is_file()}


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("kill") / "run.py"
    path.write_text(RUN.format(notebooks=str(helpers.REPO_ROOT / "notebooks"),
                               scripts=str(helpers.REPO_ROOT / "scripts")))
    return path


@pytest.fixture(scope="module")
def uninterrupted(script, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    result = run(script, folder)
    assert result.returncode == 0 and "epochs 3" in result.stdout, result.stderr[-2000:]
    return digest(folder / "final.params")


@pytest.mark.parametrize("kill_at", ["mid-epoch", "mid-checkpoint"])
def test_a_killed_run_resumes_to_the_same_weights(script, uninterrupted, tmp_path, kill_at):
    before = shipped_state()
    killed = run(script, tmp_path, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert storage.latest_epoch(tmp_path)[1]["train"].__len__() == 1  # epoch 2 never became a checkpoint
    assert not (tmp_path / "epoch-0002").exists()

    resumed = run(script, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after epoch 1" in resumed.stdout and "epochs 3" in resumed.stdout
    assert digest(tmp_path / "final.params") == uninterrupted
    assert shipped_state() == before
