"""Notebook 2's LSTM / GRU / RNN comparison at the shipped sizes, through the notebook's own code.

    GENMODELS_DATA_DIR=/folder/with/nietzsche.txt .venv/bin/python experiments/compare_char_layers.py --epochs 3

Each layer type is trained from the same seed, at the sizes, batch, window, learning rate and
clip of the shipped LSTM (its entry in weights/manifest.json; --num-hidden makes the recurrent
layers smaller, for a machine where the shipped size takes too long), for --epochs epochs of the
shipped run's own learning-rate schedule (a cosine over all of its epochs), by the notebook's
compare_layers, train_one_epoch and evaluate. The result, with this command, goes to
experiments/logs/char_layer_comparison.json, which the notebook's default mode reads and plots.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "notebooks")]
import helpers  # noqa: E402  (sets the thread count and engine before mxnet is imported)
import storage
from notebook_code import notebook_namespace  # noqa: E402

LOG = ROOT / "experiments" / "logs" / "char_layer_comparison.json"
MODES = ("lstm", "gru", "rnn")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per layer type (default 3)")
    parser.add_argument("--num-hidden", type=int, default=None, help="units per layer (default: the shipped size)")
    parser.add_argument("--output", type=Path, default=LOG, help=f"default: {LOG.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.epochs < 1 or (args.num_hidden is not None and args.num_hidden < 1):
        sys.exit(f"--epochs {args.epochs}, --num-hidden {args.num_hidden}: give at least 1")
    config = storage.read_manifest()["char_lstm.params"]["config"]
    notebook = notebook_namespace(
        "02_char_language_model.ipynb", also=("loss_function", "device"), SEQ_LENGTH=config["seq_length"],
        BATCH_SIZE=config["batch_size"], LEARNING_RATE=config["learning_rate"], CLIP=config["clip"],
        SEED=config["seed"], EPOCHS=config["epochs"], WEIGHT_DECAY=config["weight_decay"])
    text = helpers.read_text(storage.nietzsche_path())
    index_to_char, char_to_index = helpers.build_vocabulary(text)
    train, valid = helpers.split_by_position(helpers.encode(text, char_to_index), notebook["VALID_FRACTION"])
    train_data = helpers.batchify(train, config["batch_size"], notebook["device"])
    valid_data = helpers.batchify(valid, config["batch_size"], notebook["device"])
    sizes = {key: config[key] for key in ("num_embed", "num_hidden", "num_layers", "dropout", "weight_drop")}
    sizes["num_hidden"] = args.num_hidden or sizes["num_hidden"]
    started = time.perf_counter()
    results = notebook["compare_layers"](MODES, {"vocab_size": len(index_to_char), **sizes},
                                         train_data, valid_data, args.epochs, config["epochs"])
    threads = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} "  # set by helpers unless given
    command = threads + "python experiments/compare_char_layers.py " + " ".join(sys.argv[1:])
    log = {"command": command.strip(),
           "schedule": f"Adam, learning rate on a cosine from {config['learning_rate']} to 5% of it over "
                       f"{config['epochs']} epochs (the shipped run's), stopped after {args.epochs}",
           "config": {**sizes, "seq_length": config["seq_length"], "batch_size": config["batch_size"],
                      "learning_rate": config["learning_rate"], "clip": config["clip"],
                      "weight_decay": config["weight_decay"], "seed": config["seed"],
                      "epochs": args.epochs, "schedule_epochs": config["epochs"]},
           "machine": f"{helpers.cpu_cores()} CPU cores shared with other jobs: seconds are indicative",
           "mxnet": notebook["mx"].__version__,
           "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "minutes": round((time.perf_counter() - started) / 60, 1),
           "results": results}
    storage.write_json(args.output, log)
    print(json.dumps({mode: [round(loss, 4) for loss in curve["valid"]] for mode, curve in results.items()}))
    print(f"wrote {helpers.shown_path(args.output)} in {log['minutes']} minutes")


if __name__ == "__main__":
    main()
