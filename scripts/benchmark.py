"""Throughput of the shipped configurations, measured through the notebooks' own functions.

    python scripts/benchmark.py            # every figure but lstm_operators, one line each: name value unit
    python scripts/benchmark.py lstm_train # one of: matmul, lstm_train, dcgan_train, generation, step_cost,
                                           # lstm_operators
    python scripts/benchmark.py --pytorch /path/to/torch-venv/bin/python --rounds 3
                                           # MXNet vs PyTorch, side by side, alternating
    python scripts/benchmark.py lstm_train --pytorch ...   # the comparison of one model only

The PyTorch side runs the team's reference script (../shared/bench/pytorch_reference.py, or
--reference PATH) with the interpreter of a separate environment that has torch; torch is not
a dependency of this project.

GENMODELS_MXNET_DEFAULT_THREADS=1 measures with MXNet's own OpenMP thread count instead of the
one helpers.py sets (the number of cores), GENMODELS_MXNET_DEFAULT_ENGINE=1 with MXNet's default
asynchronous engine instead of the synchronous one helpers.py selects on the CPU build.

Each figure runs in a child process of its own, so that its peak resident memory is its own.
The models' sizes come from the manifest entries of the shipped weights in weights/, the data
is the real data (see data/README.md), and every measurement follows a warm-up. The default run
and the PyTorch comparison also keep their lines in logs/benchmark.json, with the date, the
processor and the command, so the figures README quotes can be traced to a run.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent / "notebooks")]
import helpers  # noqa: E402  (sets the OpenMP thread count before mxnet is imported)
from notebook_code import notebook_namespace  # noqa: E402

LSTM_BATCHES, DCGAN_STEPS, ORIGINAL_CHARS, STATEFUL_CHARS = 30, 30, 100, 2000
WARMUP = 3  # batches before the clock starts, on both sides of the PyTorch comparison
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "bench" / "pytorch_reference.py"
PYTORCH_FIGURES = ("lstm_train", "dcgan_train")  # the figures the PyTorch reference also measures
LOG = Path(__file__).resolve().parent.parent / "logs" / "benchmark.json"


def processor():
    """The CPU's model name and whether it has AVX-512 (speeds here differ about 1.6x with it), from /proc/cpuinfo."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    names = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")]
    return {"model_name": names[0] if names else "unknown", "avx512f": " avx512f" in info,
            "cores": helpers.cpu_cores()}


def record(kind, lines):
    """Keep one run's `name value unit` lines in the log under `kind` ('bench' or 'compare'), with where and when."""
    runs = json.loads(LOG.read_text()) if LOG.exists() else {}
    runs[kind] = {"figures": {line.split()[0]: " ".join(line.split()[1:]) for line in lines},
                  "processor": processor(), "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "command": " ".join(["python scripts/benchmark.py", *sys.argv[1:]])}
    helpers.write_json(LOG, runs)


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


def lstm_training_setup():
    """Notebook 2's model at the shipped sizes on the real text, warmed up: what lstm_train times."""
    notebook, config = char_model_notebook()
    mx, gluon = notebook["mx"], notebook["gluon"]
    text = helpers.read_text(helpers.nietzsche_path())
    indices = helpers.encode(text, notebook["char_to_index"])
    seq_length, batch_size = config["seq_length"], config["batch_size"]
    data = helpers.batchify(indices, batch_size, notebook["device"])
    # no WEIGHT_DROP: the PyTorch reference has none, and this figure is one side of that comparison
    model = notebook["GluonRNNModel"](config["mode"], len(notebook["index_to_char"]), config["num_embed"],
                                      config["num_hidden"], config["num_layers"], config["dropout"])
    model.initialize(mx.init.Xavier(), ctx=notebook["device"])
    model.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(model.collect_params(), "adam", {"learning_rate": config["learning_rate"]})
    progress = notebook["tqdm"](disable=True)

    def train(first_batch, batches):
        """Train on `batches` windows from window `first_batch` on; returns the seconds it took."""
        started = time.perf_counter()
        window = data[first_batch * seq_length:(first_batch + batches) * seq_length + 1]
        notebook["train_one_epoch"](model, trainer, window, seq_length, batch_size, progress)
        return time.perf_counter() - started

    train(0, WARMUP)
    return notebook, config, train


def lstm_train():
    notebook, config, train = lstm_training_setup()
    seconds = train(WARMUP, LSTM_BATCHES)
    chars_per_s = LSTM_BATCHES * config["seq_length"] * config["batch_size"] / seconds
    print(f"lstm_train_chars_per_s {chars_per_s:.0f} chars/s")
    print(f"lstm_train_gflops {lstm_flops_per_char(config, len(notebook['index_to_char'])) * chars_per_s / 1e9:.1f} GFLOP/s")
    print(f"lstm_train_peak_rss {peak_memory_mib():.0f} MiB")


# MXNet's profiler names of the operators in a step of the fused LSTM, grouped
LSTM_OPERATOR_GROUPS = {"rnn_kernels": ("RNN", "_backward_RNN"),  # oneDNN's fused LSTM, forward and backward
                        "weight_packing": ("_rnn_param_concat", "_backward_Concat"),  # per-layer weights <-> one buffer
                        "adam": ("adam_update",)}


def group_operator_times(totals, groups=LSTM_OPERATOR_GROUPS):
    """Sum the profiler's operator times by group, and the rest as "other". An entry of several
    fused operators ("Dropout,Reshape,...,_rnn_param_concat") counts for the group of any of them."""
    grouped = {group: 0.0 for group in (*groups, "other")}
    for name, total in totals.items():
        parts = name.split(",")
        group = next((group for group, members in groups.items() if any(part in members for part in parts)), "other")
        grouped[group] += total
    return grouped


def lstm_operators():
    """Where the LSTM training step's time goes, by MXNet's profiler, and the matrix product it is
    made of: one step's recurrent product (batch x hidden by hidden x 4 hidden) against the yardstick."""
    import mxnet as mx
    notebook, config, train = lstm_training_setup()
    mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                           filename=str(helpers.output_dir() / "lstm_profile.json"))
    mx.profiler.set_state("run")
    train(WARMUP, LSTM_BATCHES)
    mx.profiler.set_state("stop")
    operators = json.loads(mx.profiler.dumps(reset=True, format="json"))["Time"]["operator"]
    grouped = group_operator_times({name: stats["Total"] for name, stats in operators.items()})
    everything = sum(grouped.values())
    for group, total in grouped.items():
        print(f"lstm_share_{group} {100 * total / everything:.1f} %")

    hidden, vocab_size = config["num_hidden"], len(notebook["index_to_char"])
    large = dot_gflops(2048, 2048, 2048)
    kernel_flops = (lstm_flops_per_char(config, vocab_size) - 3 * 2 * hidden * vocab_size) * \
        LSTM_BATCHES * config["seq_length"] * config["batch_size"]  # the recurrent layers' part only
    kernel_gflops = kernel_flops / (grouped["rnn_kernels"] / 1000) / 1e9  # the profiler counts milliseconds
    print(f"lstm_kernels_gflops {kernel_gflops:.1f} GFLOP/s, {kernel_gflops / large:.2f} of a 2048x2048 product")
    print(f"recurrent_product_fraction {dot_gflops(config['batch_size'], hidden, 4 * hidden, 300) / large:.2f} "
          f"of a 2048x2048 product")


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
    for step in range(WARMUP + DCGAN_STEPS):
        if step == WARMUP:
            nd.waitall()
            started = time.perf_counter()
        real_batch = images[(step % 4) * batch_size:(step % 4 + 1) * batch_size]
        latent_batch = nd.random.normal(shape=(batch_size, config["latent_size"], 1, 1), ctx=device)
        losses = notebook["train_step"](generator, discriminator, *trainers, real_batch, latent_batch)
    losses[0].wait_to_read()
    seconds = time.perf_counter() - started
    images_per_s = DCGAN_STEPS * batch_size / seconds
    print(f"dcgan_train_images_per_s {images_per_s:.1f} images/s")
    flops = dcgan_step_flops(generator, discriminator, latent_batch, real_batch, notebook["nn"])
    print(f"dcgan_train_gflops {flops * images_per_s / batch_size / 1e9:.1f} GFLOP/s")
    print(f"dcgan_train_peak_rss {peak_memory_mib():.0f} MiB")


def lstm_flops_per_char(config, vocab_size):
    """Floating-point operations to train on one character: forward, then backward at twice its cost.

    Per layer and character the four gates multiply [input, state] by a 4H x (input + H) matrix;
    the decoder multiplies the state by a V x H one. Element-wise work is left out (a few percent).
    """
    hidden, forward = config["num_hidden"], 0
    for layer in range(config["num_layers"]):
        inputs = config["num_embed"] if layer == 0 else hidden
        forward += 2 * 4 * hidden * (inputs + hidden)
    forward += 2 * hidden * vocab_size
    return 3 * forward


def convolution_macs(network, inputs, nn):
    """Multiply-adds of each convolution in one forward pass of a sequential network, in order."""
    macs = []
    for layer in network:
        outputs = layer(inputs)
        if isinstance(layer, nn.Conv2DTranspose):  # every input pixel meets the whole kernel
            macs.append(inputs.shape[0] * inputs.shape[2] * inputs.shape[3] * layer.weight.data().size)
        elif isinstance(layer, nn.Conv2D):  # every output pixel does
            macs.append(outputs.shape[0] * outputs.shape[2] * outputs.shape[3] * layer.weight.data().size)
        inputs = outputs
    return macs


def dcgan_step_flops(generator, discriminator, latent_batch, real_batch, nn):
    """Floating-point operations of notebook 3's train_step, counted over its convolutions.

    A convolution's backward pass costs one forward for the weights' gradient and one for the
    input's. D runs forward three times (real, fakes in D's turn, fakes in G's turn); D's turn
    needs its weights' gradients twice and its inputs' gradients except at its first layer; G's
    turn needs only D's inputs' gradients, all the way into G, and G's weights' gradients.
    BatchNorm and the activations are left out (about 5% of the time, by oneDNN's own log).
    """
    g = convolution_macs(generator, latent_batch, nn)
    d = convolution_macs(discriminator, real_batch, nn)
    generator_macs = sum(g) + sum(g) + (sum(g) - g[0])  # forward, weights, inputs (none for z)
    discriminator_macs = 3 * sum(d) + 2 * (sum(d) + sum(d) - d[0]) + sum(d)
    return 2 * (generator_macs + discriminator_macs)


def dot_gflops(rows, inner, columns, repeats=10):
    """The best speed of `repeats` float32 products (rows x inner) by (inner x columns) through mx.nd.dot."""
    import mxnet as mx
    a, b = mx.nd.random.uniform(shape=(rows, inner)), mx.nd.random.uniform(shape=(inner, columns))
    mx.nd.dot(a, b).wait_to_read()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        mx.nd.dot(a, b).wait_to_read()
        best = min(best, time.perf_counter() - started)
    return 2 * rows * inner * columns / best / 1e9


def matmul():
    """The yardstick: the best speed of one large float32 matrix multiply through mx.nd.dot."""
    print(f"matmul_gflops {dot_gflops(2048, 2048, 2048):.1f} GFLOP/s")


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


FIGURES = {"matmul": matmul, "lstm_train": lstm_train, "dcgan_train": dcgan_train, "generation": generation,
           "step_cost": step_cost, "lstm_operators": lstm_operators}
BY_NAME_ONLY = ("lstm_operators",)  # a profile, not a throughput: left out of the default run


def pytorch_arguments(figure):
    """The reference script's command line for the shipped configuration behind `figure`."""
    manifest = helpers.read_manifest()
    if figure == "lstm_train":
        entry = manifest["char_lstm.params"]
        config = entry["config"]
        options = dict(mode=config["mode"], vocab=len(entry["vocabulary"]), embed=config["num_embed"],
                       hidden=config["num_hidden"], layers=config["num_layers"], seq=config["seq_length"],
                       batch=config["batch_size"], dropout=config["dropout"], lr=config["learning_rate"],
                       clip=config["clip"], batches=LSTM_BATCHES, warmup=WARMUP)
        model = "charlstm"
    elif figure == "dcgan_train":
        config = manifest["dcgan_generator.params"]["config"]
        options = dict(batch=config["batch_size"], nz=config["latent_size"], ngf=config["ngf"],
                       ndf=config["ndf"], batches=DCGAN_STEPS, warmup=WARMUP)
        model = "dcgan"
    else:
        raise ValueError(f"no PyTorch reference for {figure!r}; there is one for lstm_train and dcgan_train")
    return [model] + [part for key, value in options.items() for part in (f"--{key}", str(value))]


def pytorch_rate(line):
    """The throughput in the reference's one-line report, e.g. '... chars_per_s=6156' -> 6156.0."""
    rates = [part.split("=")[1] for part in line.split() if part.split("=")[0].endswith("_per_s")]
    if len(rates) != 1:
        raise ValueError(f"expected one '<unit>_per_s=<value>' in the PyTorch reference's output, got {line!r}")
    return float(rates[0])


def ratio_summary(name, ratios):
    """`name value unit` lines for a list of MXNet / PyTorch ratios: median, lowest, highest."""
    return [f"{name}_mxnet_over_pytorch {statistics.median(ratios):.2f} x",
            f"{name}_mxnet_over_pytorch_lowest {min(ratios):.2f} x",
            f"{name}_mxnet_over_pytorch_highest {max(ratios):.2f} x"]


def compare_with_pytorch(torch_python, reference, rounds, figures=PYTORCH_FIGURES):
    """Both frameworks back to back, alternating which goes first, `rounds` times per model."""
    if not Path(reference).is_file():
        raise FileNotFoundError(f"PyTorch reference script not found at {reference}; pass its path with --reference")
    runs = {"mxnet": lambda figure: [sys.executable, __file__, figure],
            "pytorch": lambda figure: [torch_python, str(reference), *pytorch_arguments(figure)]}
    ratios, lines = {figure: [] for figure in figures}, []
    for round_number in range(1, rounds + 1):
        for figure in ratios:
            rates = {}
            for framework in sorted(runs, reverse=round_number % 2 == 0):
                line = subprocess.run(runs[framework](figure), check=True, capture_output=True,
                                      text=True).stdout.splitlines()[0]
                rates[framework] = float(line.split()[1]) if framework == "mxnet" else pytorch_rate(line)
                lines.append(f"round{round_number}_{figure}_{framework} {rates[framework]:.1f} per s")
                print(lines[-1], flush=True)
            ratios[figure].append(rates["mxnet"] / rates["pytorch"])
    for figure, values in ratios.items():
        lines += ratio_summary(figure, values)
        print("\n".join(ratio_summary(figure, values)))
    record("compare", lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figure", nargs="?", choices=sorted(FIGURES), help="one figure only (default: all but lstm_operators)")
    parser.add_argument("--pytorch", metavar="PYTHON", help="a Python that has torch: compare with PyTorch")
    parser.add_argument("--reference", default=REFERENCE, help="the PyTorch reference script")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the PyTorch comparison")
    arguments = parser.parse_args()
    if arguments.pytorch:
        if arguments.figure not in (None, *PYTORCH_FIGURES):
            parser.error(f"there is no PyTorch reference for {arguments.figure}; compare lstm_train or dcgan_train")
        compare_with_pytorch(arguments.pytorch, arguments.reference, arguments.rounds,
                             [arguments.figure] if arguments.figure else PYTORCH_FIGURES)
    elif arguments.figure:
        FIGURES[arguments.figure]()
    else:
        everything = [f"threads {os.environ.get('OMP_NUM_THREADS', 'default')} OpenMP",
                      f"engine {os.environ.get('MXNET_ENGINE_TYPE', 'default')} MXNet"]
        print("\n".join(everything))
        gflops = {}
        for name in (name for name in FIGURES if name not in BY_NAME_ONLY):
            lines = subprocess.run([sys.executable, __file__, name], check=True, capture_output=True,
                                   text=True).stdout.splitlines()
            print("\n".join(lines), flush=True)
            everything += lines
            gflops.update((line.split()[0][:-len("_gflops")], float(line.split()[1]))
                          for line in lines if line.split()[0].endswith("_gflops"))
        for name in ("lstm_train", "dcgan_train"):
            everything.append(f"{name}_vs_matmul {gflops[name] / gflops['matmul']:.2f} of the matrix multiply's FLOP/s")
            print(everything[-1])
        record("bench", everything)
