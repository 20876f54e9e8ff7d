"""Throughput of the shipped configurations, measured through the notebooks' own functions.

    python scripts/benchmark.py            # every figure, one line each: name value unit
    python scripts/benchmark.py lstm_train # one of: lstm_train, dcgan_train, generation, step_cost

GENMODELS_MXNET_DEFAULT_THREADS=1 measures with MXNet's own OpenMP thread count instead of the
one helpers.py sets (the number of cores).

Each figure runs in a child process of its own, so that its peak resident memory is its own.
The models' sizes come from the manifest entries of the shipped weights in weights/, the data
is the real data (see data/README.md), and every measurement follows a warm-up.
"""
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent / "notebooks")]
import helpers  # noqa: E402  (sets the OpenMP thread count before mxnet is imported)
from notebook_code import notebook_namespace  # noqa: E402

LSTM_BATCHES, DCGAN_STEPS, ORIGINAL_CHARS, STATEFUL_CHARS = 30, 20, 100, 2000


def peak_memory_mib():
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def char_model_notebook():
    entry = helpers.read_manifest()["char_lstm.params"]
    vocabulary, config = entry["vocabulary"], entry["config"]
    notebook = notebook_namespace("02_char_language_model.ipynb", also=("loss_function", "device"),
                                  index_to_char=vocabulary, SEQ_LENGTH=config["seq_length"],
                                  BATCH_SIZE=config["batch_size"],
                                  char_to_index={char: index for index, char in enumerate(vocabulary)})
    return notebook, config


def lstm_train():
    notebook, config = char_model_notebook()
    mx, gluon = notebook["mx"], notebook["gluon"]
    text = helpers.read_text(helpers.nietzsche_path())
    indices = helpers.encode(text, notebook["char_to_index"])
    seq_length, batch_size = config["seq_length"], config["batch_size"]
    data = helpers.batchify(indices, batch_size, notebook["device"])
    model = notebook["GluonRNNModel"](config["mode"], len(notebook["index_to_char"]), config["num_embed"],
                                      config["num_hidden"], config["num_layers"], config["dropout"])
    model.initialize(mx.init.Xavier(), ctx=notebook["device"])
    model.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(model.collect_params(), "adam", {"learning_rate": config["learning_rate"]})
    progress = notebook["tqdm"](disable=True)
    notebook["train_one_epoch"](model, trainer, data[:3 * seq_length + 1], seq_length, batch_size, progress)
    started = time.perf_counter()
    timed = data[3 * seq_length:(3 + LSTM_BATCHES) * seq_length + 1]
    notebook["train_one_epoch"](model, trainer, timed, seq_length, batch_size, progress)
    seconds = time.perf_counter() - started
    print(f"lstm_train_chars_per_s {LSTM_BATCHES * seq_length * batch_size / seconds:.0f} chars/s")
    print(f"lstm_train_peak_rss {peak_memory_mib():.0f} MiB")


def dcgan_train():
    entry = helpers.read_manifest()["dcgan_generator.params"]
    config = entry["config"]
    notebook = notebook_namespace("03_dcgan_anime_faces.ipynb", also=("loss_function", "device"),
                                  LATENT_SIZE=config["latent_size"], BATCH_SIZE=config["batch_size"])
    mx, nd, gluon, device = notebook["mx"], notebook["nd"], notebook["gluon"], notebook["device"]
    batch_size = config["batch_size"]
    images, _ = helpers.load_images(helpers.faces_folder(), limit=batch_size * 4)
    images = images.as_in_context(device)
    generator, discriminator = notebook["make_generator"](config["ngf"]), notebook["make_discriminator"](config["ndf"])
    adam = {"learning_rate": config["learning_rate"], "beta1": config["beta1"]}
    trainers = []
    for network in (generator, discriminator):
        network.initialize(mx.init.Normal(0.02), ctx=device)
        network.hybridize(static_alloc=True, static_shape=True)
        trainers.append(gluon.Trainer(list(network.collect_params().values()), "adam", adam))
    for step in range(3 + DCGAN_STEPS):
        if step == 3:
            nd.waitall()
            started = time.perf_counter()
        real_batch = images[(step % 4) * batch_size:(step % 4 + 1) * batch_size]
        latent_batch = nd.random.normal(shape=(batch_size, config["latent_size"], 1, 1), ctx=device)
        losses = notebook["train_step"](generator, discriminator, *trainers, real_batch, latent_batch)
    losses[0].wait_to_read()
    seconds = time.perf_counter() - started
    print(f"dcgan_train_images_per_s {DCGAN_STEPS * batch_size / seconds:.1f} images/s")
    print(f"dcgan_train_peak_rss {peak_memory_mib():.0f} MiB")


def generation():
    notebook, config = char_model_notebook()
    model, _ = notebook["load_pretrained"]("char_lstm.params", notebook["index_to_char"])
    stepper = notebook["CharStepper"](model)
    stepper.hybridize(static_alloc=True, static_shape=True)
    text = helpers.read_text(helpers.nietzsche_path())
    window_prompt = text[:config["seq_length"]]
    notebook["generate_like_original"](model, window_prompt, 5)
    notebook["generate"](model, stepper, window_prompt, 20, temperature=0)
    started = time.perf_counter()
    notebook["generate_like_original"](model, window_prompt, ORIGINAL_CHARS)
    original = ORIGINAL_CHARS / (time.perf_counter() - started)
    started = time.perf_counter()
    notebook["generate"](model, stepper, window_prompt, STATEFUL_CHARS, temperature=0)
    stateful = STATEFUL_CHARS / (time.perf_counter() - started)
    print(f"generate_original_chars_per_s {original:.0f} chars/s")
    print(f"generate_stateful_chars_per_s {stateful:.0f} chars/s")
    print(f"generate_speedup {stateful / original:.1f} x")
    print(f"generate_peak_rss {peak_memory_mib():.0f} MiB")


def step_cost():
    """One character through the fused layer vs through the unfused cells (notebook 2's stepper)."""
    notebook, _ = char_model_notebook()
    nd = notebook["nd"]
    model, _ = notebook["load_pretrained"]("char_lstm.params", notebook["index_to_char"])
    stepper = notebook["CharStepper"](model)
    stepper.hybridize(static_alloc=True, static_shape=True)
    state = model.begin_state(1, notebook["device"])
    cells_state = notebook["cell_state"](state, model.num_layers)
    one_char, one_index = nd.array([[5]], ctx=notebook["device"]), nd.array([5], ctx=notebook["device"])
    calls = {"fused": lambda: model(one_char, *state)[0], "cells": lambda: stepper(one_index, *cells_state)[0]}
    for name, call in calls.items():
        for _ in range(20):
            call().wait_to_read()
        started = time.perf_counter()
        for _ in range(200):
            call().wait_to_read()
        print(f"step_{name}_ms_per_char {(time.perf_counter() - started) / 200 * 1000:.2f} ms")


FIGURES = {"lstm_train": lstm_train, "dcgan_train": dcgan_train, "generation": generation,
           "step_cost": step_cost}

if __name__ == "__main__":
    if len(sys.argv) > 1:
        FIGURES[sys.argv[1]]()
    else:
        print(f"threads {os.environ.get('OMP_NUM_THREADS', 'default')} OpenMP")
        for name in FIGURES:
            subprocess.run([sys.executable, __file__, name], check=True)
