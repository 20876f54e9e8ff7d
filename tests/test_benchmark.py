"""scripts/benchmark.py and scripts/pytorch_reference.py: what they run, the yardstick, how they read answers.

The test of the PyTorch reference runs when TORCH_PYTHON names a Python that has torch
(`TORCH_PYTHON=../torch-venv/bin/python pytest tests/test_benchmark.py`); it is skipped otherwise.
"""
import os
import subprocess

import numpy as np
import pytest

import benchmark


def test_pytorch_runs_the_shipped_configurations():
    manifest = benchmark.storage.read_manifest()  # whatever make train shipped last
    lstm, gan = manifest["char_lstm.params"]["config"], manifest["dcgan_generator.params"]["config"]
    arguments = {figure: benchmark.pytorch_arguments(figure) for figure in benchmark.PYTORCH_FIGURES}
    options = {figure: dict(zip(words[1::2], words[2::2])) for figure, words in arguments.items()}
    assert [words[0] for words in arguments.values()] == ["charlstm", "dcgan"]
    assert options["lstm_train"] == {
        "--mode": lstm["mode"], "--vocab": str(len(manifest["char_lstm.params"]["vocabulary"])),
        "--embed": str(lstm["num_embed"]), "--hidden": str(lstm["num_hidden"]), "--layers": str(lstm["num_layers"]),
        "--seq": str(lstm["seq_length"]), "--batch": str(lstm["batch_size"]), "--dropout": str(lstm["dropout"]),
        "--lr": str(lstm["learning_rate"]), "--clip": str(lstm["clip"]), "--batches": str(benchmark.LSTM_BATCHES),
        "--warmup": str(benchmark.WARMUP)}
    assert options["dcgan_train"] == {
        "--batch": str(gan["batch_size"]), "--nz": str(gan["latent_size"]), "--ngf": str(gan["ngf"]),
        "--ndf": str(gan["ndf"]), "--lr": str(gan["learning_rate"]), "--beta1": str(gan["beta1"]),
        "--batches": str(benchmark.DCGAN_STEPS), "--warmup": str(benchmark.WARMUP)}
    with pytest.raises(ValueError, match="'generation'"):
        benchmark.pytorch_arguments("generation")


def test_the_reference_builds_the_notebooks_models():
    torch_python = os.environ.get("TORCH_PYTHON")
    if not torch_python or benchmark.torch_problem(torch_python):
        pytest.skip("TORCH_PYTHON does not name a Python that has torch (torch is not a dependency)")

    def reference_counts(figure):
        line = subprocess.run([torch_python, str(benchmark.REFERENCE), *benchmark.pytorch_arguments(figure),
                               "--count-parameters"], check=True, capture_output=True, text=True).stdout
        return {part.split("=")[0]: int(part.split("=")[1]) for part in line.split()[1:]}

    def trainable(network):
        return sum(p.data().size for p in network.collect_params().values() if p.grad_req != "null")

    notebook, config = benchmark.char_model_notebook()
    model = notebook["GluonRNNModel"](config["mode"], len(notebook["index_to_char"]), config["num_embed"],
                                      config["num_hidden"], config["num_layers"], config["dropout"])
    model.initialize()
    assert reference_counts("lstm_train") == {"model": trainable(model)}

    gan = benchmark.storage.read_manifest()["dcgan_generator.params"]["config"]
    notebook = benchmark.notebook_namespace("03_dcgan_anime_faces.ipynb", also=("device",))
    generator, discriminator = notebook["make_generator"](gan["ngf"]), notebook["make_discriminator"](gan["ndf"])
    for network in (generator, discriminator):
        network.initialize()
    discriminator(generator(notebook["nd"].zeros((1, gan["latent_size"], 1, 1))))  # shapes are inferred on a call
    assert reference_counts("dcgan_train") == {"generator": trainable(generator),
                                               "discriminator": trainable(discriminator)}


def test_a_python_without_torch_is_named(tmp_path):
    assert str(tmp_path / "python") in benchmark.torch_problem(str(tmp_path / "python"))


def test_both_ways_of_multiplying_compute_the_same_product():
    import mxnet as mx
    a, b = mx.nd.random.uniform(shape=(5, 7)), mx.nd.random.uniform(shape=(7, 3))
    for way, product in benchmark.products(a, b).items():
        assert product().shape == (5, 3) and np.allclose(product().asnumpy(), a.asnumpy() @ b.asnumpy(), atol=1e-5), way


def test_the_trainings_are_divided_by_the_faster_product(monkeypatch, capsys):
    monkeypatch.setattr(benchmark, "product_gflops", lambda *shape: {"dot": 80.0, "fully_connected": 320.0})
    benchmark.matmul()
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].split()[:4] == ["matmul_gflops", "320.0", "GFLOP/s,", "fully_connected,"]
    fractions = benchmark.fractions_of_matmul(lines + ["lstm_train_gflops 160.0 GFLOP/s", "dcgan_train_gflops 80.0 GFLOP/s"])
    assert [line.split()[:2] for line in fractions] == [["lstm_train_vs_matmul", "0.50"], ["dcgan_train_vs_matmul", "0.25"]]


def test_the_rate_is_read_from_the_reference_line():
    assert benchmark.pytorch_rate("dcgan memory_format=channels_last threads=2 images_per_s=56.6") == 56.6
    with pytest.raises(ValueError, match="_per_s"):
        benchmark.pytorch_rate("Traceback (most recent call last):")


def test_ratios_are_summarised_by_median_and_range():
    assert [line.split()[1] for line in benchmark.ratio_summary("dcgan_train", [1.3, 0.9, 1.1])] == ["1.10", "0.90", "1.30"]


def test_floating_point_operations_are_counted_from_the_layer_shapes():
    import mxnet as mx
    from mxnet.gluon import nn

    network = nn.HybridSequential()
    network.add(nn.Conv2D(8, 4, strides=2, padding=1), nn.LeakyReLU(0.2),  # 64x64 -> 32x32
                nn.Conv2DTranspose(5, 4, strides=2, padding=1))             # 32x32 -> 64x64
    network.initialize()
    inputs = mx.nd.zeros((2, 3, 64, 64))
    assert benchmark.convolution_macs(network, inputs, nn) == [2 * 32 * 32 * 8 * 3 * 16, 2 * 32 * 32 * 8 * 5 * 16]
    # the LSTM: 4 gates of [input, state] per layer, the decoder, then backward at twice the forward
    config = {"num_embed": 10, "num_hidden": 20, "num_layers": 2}
    forward = 2 * 4 * 20 * (10 + 20) + 2 * 4 * 20 * (20 + 20) + 2 * 20 * 30
    assert benchmark.lstm_flops_per_char(config, vocab_size=30) == 3 * forward


def test_profiled_operators_are_grouped_and_nothing_is_lost():
    totals = {"RNN": 30.0, "_backward_RNN": 50.0, "Dropout,Reshape,Reshape,_rnn_param_concat": 6.0,
              "_backward_Concat,_backward_reshape": 4.0, "adam_update": 2.0, "FullyConnected": 1.0,
              "_backward_FullyConnected": 2.0}
    grouped = benchmark.group_operator_times(totals)
    assert grouped == {"rnn_kernels": 80.0, "weight_packing": 10.0, "adam": 2.0, "other": 3.0}


def test_each_kind_of_run_keeps_its_lines_in_the_log_beside_the_other(tmp_path, monkeypatch):
    monkeypatch.setattr(benchmark, "LOG", tmp_path / "benchmark.json")
    benchmark.record("bench", ["threads 2 OpenMP", "matmul_gflops 150.2 GFLOP/s"])
    benchmark.record("compare", ["dcgan_train_mxnet_over_pytorch 0.98 x"])
    benchmark.record("bench", ["matmul_gflops 160.0 GFLOP/s"])  # a later run replaces the one of its kind
    runs = benchmark.json.loads((tmp_path / "benchmark.json").read_text())
    assert runs["bench"]["figures"] == {"matmul_gflops": "160.0 GFLOP/s"}
    assert runs["compare"]["figures"] == {"dcgan_train_mxnet_over_pytorch": "0.98 x"}
    assert {"model_name", "avx512f"} <= set(runs["bench"]["processor"])
    assert [len(loads) for loads in runs["bench"]["load_average_1_5_15_min"].values()] == [3, 3]


def test_readme_quotes_the_logged_runs():
    runs = benchmark.json.loads(benchmark.LOG.read_text())
    readme = " ".join((benchmark.LOG.parent.parent / "README.md").read_text().split())  # wrapping aside
    bench = {name: text.split()[0] for name, text in runs["bench"]["figures"].items()}
    quoted = [runs["bench"]["processor"]["model_name"], runs["compare"]["processor"]["model_name"],
              f"{int(bench['lstm_train_chars_per_s']):,} characters per second",
              f"{bench['dcgan_train_images_per_s']} images per second",
              f"{bench['generate_stateful_chars_per_s']} characters per second",
              f"{bench['generate_original_chars_per_s']} characters per second",
              f"{bench['generate_speedup']} times as fast",
              f"{bench['step_fused_ms_per_char']} ms / {bench['step_cells_ms_per_char']} ms",
              f"`mx.nd.dot` {bench['matmul_dot_gflops']} GFLOP/s",
              f"`FullyConnected` {bench['matmul_fully_connected_gflops']} GFLOP/s",
              f"{bench['lstm_train_gflops']} GFLOP/s, {bench['lstm_train_vs_matmul']} of it",
              f"{bench['dcgan_train_gflops']} GFLOP/s, {bench['dcgan_train_vs_matmul']} of it"]
    compare = {name: text.split()[0] for name, text in runs["compare"]["figures"].items()}
    for model in benchmark.PYTORCH_FIGURES:
        quoted.append(f"{compare[model + '_mxnet_over_pytorch']} (lowest {compare[model + '_mxnet_over_pytorch_lowest']}, "
                      f"highest {compare[model + '_mxnet_over_pytorch_highest']})")
    assert [figure for figure in quoted if figure not in readme] == []
