"""Full training runs of notebook 2's model with other settings, scored by the notebook's own evaluate.

    GENMODELS_DATA_DIR=/folder/with/nietzsche.txt .venv/bin/python experiments/char_lm_runs.py \\
        --name "2x512, 40 epochs" --num-layers 2 --epochs 40

Each run starts from the notebook's parameters cell, changes the settings given here, and trains
with the notebook's own model, epoch, evaluation and checkpoints (the same split, batches, seed,
Adam, cosine schedule and clip), into checkpoints/char_lm_runs/, so an interrupted run resumes.
Five levers the notebook leaves off live here, in `LeverModel` and `fit_with_levers`:
--locked-dropout (one dropout mask per column for all the steps of a window), --embed-dropout
(a share of the vocabulary's embeddings zeroed for a whole batch), --random-offset (each epoch's
windows start at a random one of the first SEQ_LENGTH rows), --average-last N (the mean of the
last N epochs' weights, kept when it scores lower) and --weight-decay (Adam's L2 penalty). Its validation curve, best epoch,
minutes and speed go into experiments/logs/char_lm_runs.json under --name, with the command that made it; a
run with another --batch-size also has its best epoch scored on the validation text batched as the
shipped run's is (evaluate starts one zero state per column, so the batch changes the score a little).
Run the same command again to resume an interrupted run, or to record a finished one again.
`--record-shipped NAME` instead copies the manifest entry of the shipped weights into the log
(before a retrain replaces it), so the run that made them stays beside the others, and
`--name NAME --record-checkpoints FOLDER --command "..."` records a run stopped by hand from the
newest complete epoch in its checkpoint folder.
"""
import argparse
import contextlib
import fcntl
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "notebooks")]
import helpers  # noqa: E402  (sets the thread count and engine before mxnet is imported)
import storage
from notebook_code import notebook_namespace  # noqa: E402

LOG = ROOT / "experiments" / "logs" / "char_lm_runs.json"
TRAIN_COMMAND = "make train NOTEBOOK=notebooks/02_char_language_model.ipynb"  # what made a checkpoint folder


def true_or_false(text):
    """--random-offset or --locked-dropout true / false, as the parameters cell's True / False."""
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"{text!r} is neither true nor false")
    return text.lower() == "true"


SETTINGS = {"num_hidden": int, "num_layers": int, "dropout": float, "weight_drop": float, "seq_length": int,
            "batch_size": int, "epochs": int, "learning_rate": float, "weight_decay": float, "seed": int,
            "random_offset": true_or_false, "average_last": int, "locked_dropout": true_or_false,
            "embed_dropout": float}


LEVERS = ("weight_decay", "random_offset", "average_last", "locked_dropout", "embed_dropout")


def lever_model_class(notebook):
    """Notebook 2's GluonRNNModel with two more dropouts, as a subclass built on the notebook's own class."""
    nn = notebook["nn"]

    class LeverModel(notebook["GluonRNNModel"]):
        """locked_dropout: the embeddings' and the decoder input's dropout keep one mask per column for all
        the steps of a window (variational dropout, Gal and Ghahramani 2016); embed_dropout: a share of the
        vocabulary's embeddings zeroed for a whole batch, wherever those characters occur (embedding dropout)."""

        def __init__(self, mode, vocab_size, num_embed, num_hidden, num_layers, dropout=0.5, weight_drop=0.0,
                     locked_dropout=False, embed_dropout=0.0, **kwargs):
            super().__init__(mode, vocab_size, num_embed, num_hidden, num_layers, dropout, weight_drop, **kwargs)
            self.vocab_size, self.embed_dropout = vocab_size, embed_dropout
            if locked_dropout:  # axis 0: the steps share one mask
                self.drop = nn.Dropout(dropout, axes=(0,))

        def hybrid_forward(self, F, inputs, *state):
            embedded = self.encoder(inputs)
            if self.embed_dropout:  # one draw per batch and character: a dropped one is zero wherever it occurs
                kept = F.Dropout(F.ones((self.vocab_size, 1)), p=self.embed_dropout)  # 0 or 1 / (1 - p)
                embedded = F.broadcast_mul(embedded, F.Embedding(inputs, kept, self.vocab_size, 1))
            output, state = self.rnn(self.drop(embedded), list(state))
            return self.decoder(self.drop(output)), state

    return LeverModel


def running_mean(average, model, count):
    """The mean of `count` weight sets: `average` (of count - 1, or None) updated with the model's weights."""
    weights = [parameter.data() for parameter in model.collect_params().values()]
    if average is None:
        return [weight.copy() for weight in weights]
    return [mean + (weight - mean) / count for mean, weight in zip(average, weights)]


@contextlib.contextmanager
def weights_swapped(model, weights):
    """Inside the block `model` computes with `weights` (in collect_params order); its own come back after."""
    parameters = list(model.collect_params().values())
    own = [parameter.data().copy() for parameter in parameters]
    for parameter, weight in zip(parameters, weights):
        parameter.set_data(weight)
    try:
        yield model
    finally:
        for parameter, weight in zip(parameters, own):
            parameter.set_data(weight)


def fit_with_levers(notebook, model, train_data, valid_data, epochs, folder, config, stop_after=None):
    """The notebook's `fit` with config's random_offset, average_last and weight_decay applied.

    From epoch `epochs - average_last + 1` on, the weights at each epoch's end also go into a running
    mean, scored after each of those epochs (history["valid_average"], and average.params beside
    the epoch's checkpoint)."""
    nd, np = notebook["nd"], notebook["np"]
    seq_length, batch_size, average_last = notebook["SEQ_LENGTH"], notebook["BATCH_SIZE"], config["average_last"]
    batches_per_epoch = (train_data.shape[0] - 1) // seq_length
    trainer = notebook["make_trainer"](model, notebook["LEARNING_RATE"], epochs * batches_per_epoch)
    trainer.optimizer.wd = config["weight_decay"]  # Adam's L2 penalty, added to every gradient
    model.hybridize(static_alloc=True, static_shape=True)
    record = storage.resume(folder, {"model": model}, {"trainer": trainer}, config, epochs, ctx=train_data.context) \
        or {"train": [], "valid": [], "seconds": [], "chars_per_s": [], "config": config}
    record.setdefault("valid_average", [])
    latest = storage.latest_epoch(folder)
    average_file = latest[0] / "average.params" if latest else None
    average = nd.load(str(average_file)) if average_file and average_file.is_file() else None
    first_averaged = max(1, epochs - average_last + 1) if average_last > 1 else epochs + 1
    for epoch in range(len(record["train"]), min(epochs, stop_after or epochs)):
        helpers.seed_everything(helpers.epoch_seed(notebook["SEED"], epoch))
        offset = int(np.random.randint(seq_length)) if config["random_offset"] else 0
        windows = len(range(offset, train_data.shape[0] - seq_length, seq_length))
        started = time.perf_counter()
        with notebook["tqdm"](total=windows, desc=f"epoch {epoch + 1}/{epochs}", mininterval=10) as progress:
            train_loss = notebook["train_one_epoch"](model, trainer, train_data, seq_length, batch_size, progress, offset)
        record["chars_per_s"].append(windows * seq_length * batch_size / (time.perf_counter() - started))
        valid_loss = notebook["evaluate"](model, valid_data, seq_length, batch_size)
        notebook["stop_if_diverged"](valid_loss, notebook["vocab_size"], "validation loss")
        files = {"model.params": model.save_parameters, "trainer.states": trainer.save_states}
        if epoch + 1 >= first_averaged:
            average = running_mean(average, model, epoch + 2 - first_averaged)
            with weights_swapped(model, average):
                record["valid_average"].append(notebook["evaluate"](model, valid_data, seq_length, batch_size))
            files["average.params"] = lambda path, weights=average: nd.save(str(path), weights)
        record["train"].append(train_loss)
        record["valid"].append(valid_loss)
        record["seconds"].append(time.perf_counter() - started)
        record["best_epoch"] = int(np.argmin(record["valid"])) + 1
        storage.save_epoch(folder, epoch + 1, files, record)
        averaged = f", mean of the last {len(record['valid_average'])} {record['valid_average'][-1]:.4f}" \
            if record["valid_average"] else ""
        print(f"epoch {epoch + 1}: train {train_loss:.3f}, validation {valid_loss:.4f} nats{averaged}, "
              f"{record['seconds'][-1]:.0f} s")
    return record


def record(name, run):
    """Add or replace the run `name` in the log; runs in parallel processes each keep theirs."""
    with open(storage.checkpoint_dir("char_lm_runs") / "log.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = json.loads(LOG.read_text()) if LOG.exists() else {}
        runs[name] = run
        storage.write_json(LOG, runs)


def summary(config, history, best_epoch, command, **extra):
    averaged = {"valid_average": history["valid_average"]} if history.get("valid_average") else {}  # AVERAGE_LAST > 1
    return {"config": config, "valid": history["valid"], "train": history["train"], "best_epoch": best_epoch,
            "best_valid_nats": history["valid"][best_epoch - 1],
            "training_minutes": round(sum(history["seconds"]) / 60, 1),
            "chars_per_second": round(sum(history["chars_per_s"]) / len(history["chars_per_s"])),
            "command": command, **averaged, **extra}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", help="the run's name in the log, e.g. '3x512, weight decay 1e-5'")
    for setting, kind in SETTINGS.items():
        parser.add_argument("--" + setting.replace("_", "-"), type=kind, help="default: the parameters cell's")
    parser.add_argument("--record-shipped", metavar="NAME", help="copy the shipped weights' run into the log")
    parser.add_argument("--record-checkpoints", metavar="FOLDER", type=Path,
                        help="with --name: copy the newest epoch record of a stopped run's checkpoint folder into the log")
    parser.add_argument("--command", default=TRAIN_COMMAND,
                        help=f"with --record-checkpoints: what made the folder (default: {TRAIN_COMMAND})")
    parser.add_argument("--note", default="", help="a remark kept with the run, e.g. the machine it ran on")
    args = parser.parse_args()
    if args.record_shipped:
        entry = storage.read_manifest()["char_lstm.params"]
        record(args.record_shipped, summary(entry["config"], entry["history"], entry["best_epoch"], entry["command"],
                                            weights_sha256=entry["sha256"], note=args.note))
        print(f"recorded the shipped run as {args.record_shipped!r} in {helpers.shown_path(LOG)}")
        return
    if not args.name:
        parser.error("give --name (or --record-shipped NAME)")
    if args.record_checkpoints:
        latest = storage.latest_epoch(args.record_checkpoints)
        if latest is None:
            sys.exit(f"{args.record_checkpoints} holds no complete epoch")
        history = latest[1]
        epochs_run = len(history["valid"])
        stopped = {"stopped_after": epochs_run} if epochs_run < history["config"]["epochs"] else {}
        record(args.name, summary(history["config"], history, history["best_epoch"], args.command,
                                  note=args.note, **stopped))
        print(f"recorded {epochs_run} epochs of {args.record_checkpoints} as {args.name!r}")
        return
    given = {setting.upper(): value for setting, value in vars(args).items()
             if setting in SETTINGS and setting not in LEVERS and value is not None}
    levers = {lever: getattr(args, lever) for lever in LEVERS if getattr(args, lever) is not None}
    notebook = notebook_namespace("02_char_language_model.ipynb", also=("loss_function", "device"), **given)
    text = helpers.read_text(storage.nietzsche_path())
    index_to_char, char_to_index = helpers.build_vocabulary(text)
    notebook.update(index_to_char=index_to_char, char_to_index=char_to_index, vocab_size=len(index_to_char))
    notebook["check_settings"]({**notebook, "PRIMING_TEXT": "The "}, index_to_char, len(text))
    train, valid = helpers.split_by_position(helpers.encode(text, char_to_index), notebook["VALID_FRACTION"])
    train_data = helpers.batchify(train, notebook["BATCH_SIZE"], notebook["device"])
    valid_data = helpers.batchify(valid, notebook["BATCH_SIZE"], notebook["device"])
    config = {**notebook["run_config"](), **levers}
    helpers.seed_everything(notebook["SEED"])
    model = lever_model_class(notebook)(config["mode"], len(index_to_char), config["num_embed"], config["num_hidden"],
                                        config["num_layers"], config["dropout"], config["weight_drop"],
                                        config["locked_dropout"], config["embed_dropout"])
    model.initialize(notebook["mx"].init.Xavier(), ctx=notebook["device"])
    folder = storage.checkpoint_dir("char_lm_runs/" + re.sub(r"[^A-Za-z0-9.-]+", "_", args.name))
    started = time.perf_counter()
    with storage.exclusive_run(folder):
        history = fit_with_levers(notebook, model, train_data, valid_data, config["epochs"], folder, config)
    threads = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} "  # set by helpers unless given
    command = threads + "python experiments/char_lm_runs.py " + " ".join(
        f"'{arg}'" if " " in arg else arg for arg in sys.argv[1:])
    extra = {}
    shipped_batch = storage.read_manifest()["char_lstm.params"]["config"]["batch_size"]
    if config["batch_size"] != shipped_batch:  # evaluate's columns follow the batch: score the best epoch as the shipped run is
        model.load_parameters(str(folder / f"epoch-{history['best_epoch']:04d}" / "model.params"), ctx=notebook["device"])
        same_columns = helpers.batchify(valid, shipped_batch, notebook["device"])
        extra["rescored"] = {"batch_size": shipped_batch, "valid_nats": notebook["evaluate"](
            model, same_columns, config["seq_length"], shipped_batch)}
    record(args.name, summary(config, history, history["best_epoch"], command,
                              finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              cpu_cores=helpers.cpu_cores(), mxnet=notebook["mx"].__version__, note=args.note, **extra))
    print(f"{args.name}: best validation {history['valid'][history['best_epoch'] - 1]:.4f} nats at epoch "
          f"{history['best_epoch']} of {config['epochs']}, {(time.perf_counter() - started) / 60:.1f} minutes")


if __name__ == "__main__":
    main()
