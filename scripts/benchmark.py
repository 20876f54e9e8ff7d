"""Throughput of the shipped configurations, measured through the notebooks' own functions.

    python scripts/benchmark.py            # every figure but lstm_operators, one line each: name value unit
    python scripts/benchmark.py lstm_train # one of: matmul, lstm_train, dcgan_train, generation, step_cost,
                                           # lstm_operators
    python scripts/benchmark.py --pytorch ../torch-venv/bin/python --rounds 3
                                           # MXNet vs PyTorch, side by side, alternating
    python scripts/benchmark.py lstm_train --pytorch ...   # the comparison of one model only

The PyTorch side runs scripts/pytorch_reference.py, the same two models in PyTorch, with the
interpreter of a separate environment that has torch (python3.11 -m venv ../torch-venv &&
../torch-venv/bin/pip install torch); torch is not a dependency of this project.

The training figures are also given as a fraction of the best float32 matrix multiply this MXNet
does: the faster of mx.nd.dot (the wheel's OpenBLAS) and oneDNN's FullyConnected, both measured.

GENMODELS_MXNET_DEFAULT_THREADS=1 measures with MXNet's own OpenMP thread count instead of the
one helpers.py sets (the number of cores), GENMODELS_MXNET_DEFAULT_ENGINE=1 with MXNet's default
asynchronous engine instead of the synchronous one helpers.py selects on the CPU build.

Each figure runs in a child process of its own, so that its peak resident memory is its own.
The models' sizes come from the manifest entries of the shipped weights in weights/, the data
is the real data (see data/README.md), and every measurement follows a warm-up. The default run
and the PyTorch comparison also keep their lines in logs/benchmark.json, with the date, the
processor, the load average at start and end and the command, so the figures README quotes
can be traced to a run.
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
import storage  # noqa: E402  (notebooks/storage.py: the manifest of the shipped weights, JSON written whole)
from notebook_code import notebook_namespace  # noqa: E402

LSTM_BATCHES, DCGAN_STEPS, ORIGINAL_CHARS, STATEFUL_CHARS = 30, 30, 100, 2000
WARMUP = 3  # batches before the clock starts, on both sides of the PyTorch comparison
REFERENCE = Path(__file__).resolve().parent / "pytorch_reference.py"
PYTORCH_FIGURES = ("lstm_train", "dcgan_train")  # the figures the PyTorch reference also measures
LOG = Path(__file__).resolve().parent.parent / "logs" / "benchmark.json"


def processor():
    """The CPU's model name, family and model numbers and vector extensions, from /proc/cpuinfo."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in info.splitlines()[:30] if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return {"model_name": fields.get("model name", "unknown"),
            "family_model": f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}",
            "avx512f": " avx512f" in info, "amx": " amx_tile" in info, "cores": helpers.cpu_cores()}


LOAD_AT_START = os.getloadavg()


def record(kind, lines):
    """Keep one run's `name value unit` lines in the log under `kind` ('bench' or 'compare'), with where and when."""
    runs = json.loads(LOG.read_text()) if LOG.exists() else {}
    runs[kind] = {"figures": {line.split()[0]: " ".join(line.split()[1:]) for line in lines},
                  "processor": processor(), "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "load_average_1_5_15_min": {"start": [round(load, 2) for load in LOAD_AT_START],
                                              "end": [round(load, 2) for load in os.getloadavg()]},
                  "command": " ".join(["python scripts/benchmark.py", *sys.argv[1:]])}
    storage.write_json(LOG, runs)


def peak_memory_mib():
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def char_model_notebook():
    entry = storage.read_manifest()["char_lstm.params"]
    vocabulary, config = entry["vocabulary"], entry["config"]
    notebook = notebook_namespace("02_char_language_model.ipynb", also=("loss_function", "device"),
                                  index_to_char=vocabulary, vocab_size=len(vocabulary), SEQ_LENGTH=config["seq_length"],
                                  BATCH_SIZE=config["batch_size"],
                                  char_to_index={char: index for index, char in enumerate(vocabulary)})
    return notebook, config


def lstm_training_setup():
    """Notebook 2's model at the shipped sizes on the real text, warmed up: what lstm_train times."""
    notebook, config = char_model_notebook()
    mx, gluon = notebook["mx"], notebook["gluon"]
    text = helpers.read_text(storage.nietzsche_path())
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
    large = max(product_gflops(2048, 2048, 2048).values())
    kernel_flops = (lstm_flops_per_char(config, vocab_size) - 3 * 2 * hidden * vocab_size) * \
        LSTM_BATCHES * config["seq_length"] * config["batch_size"]  # the recurrent layers' part only
    kernel_gflops = kernel_flops / (grouped["rnn_kernels"] / 1000) / 1e9  # the profiler counts milliseconds
    print(f"lstm_kernels_gflops {kernel_gflops:.1f} GFLOP/s, {kernel_gflops / large:.2f} of the best 2048x2048 product")
    recurrent = max(product_gflops(config["batch_size"], hidden, 4 * hidden, 300).values())
    print(f"recurrent_product_fraction {recurrent / large:.2f} of the best 2048x2048 product")


def dcgan_train():
    entry = storage.read_manifest()["dcgan_generator.params"]
    config = entry["config"]
    notebook = notebook_namespace("03_dcgan_anime_faces.ipynb", also=("loss_function", "device"),
                                  LATENT_SIZE=config["latent_size"], BATCH_SIZE=config["batch_size"])
    mx, nd, gluon, device = notebook["mx"], notebook["nd"], notebook["gluon"], notebook["device"]
    batch_size = config["batch_size"]
    images, _ = helpers.load_images(storage.faces_folder(), limit=batch_size * 4)
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


def products(a, b):
    """a x b, as zero-argument functions, one per way this MXNet multiplies float32 matrices:
    mx.nd.dot (the wheel's OpenBLAS) and oneDNN's FullyConnected, which takes b transposed."""
    import mxnet as mx
    weight = b.T.copy()  # transposed once, outside the clock
    return {"dot": lambda: mx.nd.dot(a, b),
            "fully_connected": lambda: mx.nd.FullyConnected(a, weight, no_bias=True, num_hidden=b.shape[1],
                                                            flatten=False)}


def product_gflops(rows, inner, columns, repeats=10):
    """{way: GFLOP/s} of the best of `repeats` float32 products (rows x inner) by (inner x columns), each way."""
    import mxnet as mx
    a, b = mx.nd.random.uniform(shape=(rows, inner)), mx.nd.random.uniform(shape=(inner, columns))
    rates = {}
    for way, product in products(a, b).items():
        product().wait_to_read()
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            product().wait_to_read()
            best = min(best, time.perf_counter() - started)
        rates[way] = 2 * rows * inner * columns / best / 1e9
    return rates


def matmul():
    """The yardstick: one 2048x2048 float32 matrix multiply each way, and the faster of them."""
    rates = product_gflops(2048, 2048, 2048)
    for way, gflops in rates.items():
        print(f"matmul_{way}_gflops {gflops:.1f} GFLOP/s")
    best = max(rates, key=rates.get)
    print(f"matmul_gflops {rates[best]:.1f} GFLOP/s, {best}, the faster")


def fractions_of_matmul(lines):
    """Each training's GFLOP/s over the best matrix multiply's, from the figures' `name value unit` lines."""
    gflops = {line.split()[0][:-len("_gflops")]: float(line.split()[1])
              for line in lines if line.split()[0].endswith("_gflops")}
    return [f"{name}_vs_matmul {gflops[name] / gflops['matmul']:.2f} of the best matrix multiply's FLOP/s"
            for name in ("lstm_train", "dcgan_train")]


def generation():
    notebook, config = char_model_notebook()
    model, _ = notebook["load_pretrained"]("char_lstm.params", notebook["index_to_char"])
    stepper = notebook["CharStepper"](model)
    stepper.hybridize(static_alloc=True, static_shape=True)
    text = helpers.read_text(storage.nietzsche_path())
    window_prompt = text[:config["seq_length"]]
    notebook["generate_like_original"](model, window_prompt, 5)
    notebook["generate"](model, stepper, window_prompt, 20, temperature=0)
    started = time.perf_counter()
    notebook["generate_like_original"](model, window_prompt, ORIGINAL_CHARS)
    original = ORIGINAL_CHARS / (time.perf_counter() - started)
    started = time.perf_counter()
    notebook["generate"](model, stepper, window_prompt, STATEFUL_CHARS, temperature=0)
    stateful = STATEFUL_CHARS / (time.perf_counter() - started)
    print(f"generate_original_chars_per_s {original:.1f} chars/s")  # a few per second: a decimal
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


def output_lines(command):
    """The lines `command` prints; when it fails, what it wrote to stderr ends this process."""
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{finished.stderr.strip()}")
    return finished.stdout.splitlines()


def pytorch_arguments(figure):
    """The reference script's command line for the shipped configuration behind `figure`."""
    manifest = storage.read_manifest()
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
                       ndf=config["ndf"], lr=config["learning_rate"], beta1=config["beta1"],
                       batches=DCGAN_STEPS, warmup=WARMUP)
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


def torch_problem(torch_python):
    """None when `torch_python` imports torch, else one sentence saying what to do."""
    try:
        if subprocess.run([torch_python, "-c", "import torch"], capture_output=True).returncode == 0:
            return None
    except OSError:
        pass
    return (f"{torch_python} (TORCH_PYTHON, --pytorch) cannot import torch; make a venv that has it "
            f"(python3.11 -m venv ../torch-venv && ../torch-venv/bin/pip install torch) and pass its bin/python")


def compare_with_pytorch(torch_python, rounds, figures=PYTORCH_FIGURES):
    """Both frameworks back to back, alternating which goes first, `rounds` times per model. The log
    is written after every round (with the rounds done), so an interrupted comparison keeps what it measured."""
    runs = {"mxnet": lambda figure: [sys.executable, __file__, figure],
            "pytorch": lambda figure: [torch_python, str(REFERENCE), *pytorch_arguments(figure)]}
    ratios, lines = {figure: [] for figure in figures}, []
    for round_number in range(1, rounds + 1):
        for figure in ratios:
            rates = {}
            for framework in sorted(runs, reverse=round_number % 2 == 0):
                line = output_lines(runs[framework](figure))[0]
                rates[framework] = float(line.split()[1]) if framework == "mxnet" else pytorch_rate(line)
                lines.append(f"round{round_number}_{figure}_{framework} {rates[framework]:.1f} per s")
                print(lines[-1], flush=True)
            ratios[figure].append(rates["mxnet"] / rates["pytorch"])
        summary = [f"rounds_done {round_number} of {rounds}"]
        summary += [line for figure, values in ratios.items() for line in ratio_summary(figure, values)]
        record("compare", lines + summary)
    print("\n".join(summary))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figure", nargs="?", choices=sorted(FIGURES), help="one figure only (default: all but lstm_operators)")
    parser.add_argument("--pytorch", metavar="PYTHON", help="a Python that has torch: compare with PyTorch")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the PyTorch comparison")
    arguments = parser.parse_args()
    if arguments.pytorch:
        if arguments.figure not in (None, *PYTORCH_FIGURES):
            parser.error(f"there is no PyTorch reference for {arguments.figure}; compare lstm_train or dcgan_train")
        if torch_problem(arguments.pytorch):
            parser.error(torch_problem(arguments.pytorch))
        compare_with_pytorch(arguments.pytorch, arguments.rounds,
                             [arguments.figure] if arguments.figure else PYTORCH_FIGURES)
    elif arguments.figure:
        FIGURES[arguments.figure]()
    else:
        everything = [f"threads {os.environ.get('OMP_NUM_THREADS', 'default')} OpenMP",
                      f"engine {os.environ.get('MXNET_ENGINE_TYPE', 'default')} MXNet"]
        print("\n".join(everything))
        for name in (name for name in FIGURES if name not in BY_NAME_ONLY):
            lines = output_lines([sys.executable, __file__, name])
            print("\n".join(lines), flush=True)
            everything += lines
        print("\n".join(fractions_of_matmul(everything)))
        record("bench", everything + fractions_of_matmul(everything))
