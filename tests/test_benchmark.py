"""The PyTorch side-by-side of scripts/benchmark.py: what it runs and how it reads the answers."""
import pytest

import benchmark


def test_pytorch_runs_the_shipped_lstm_configuration():
    entry = benchmark.helpers.read_manifest()["char_lstm.params"]  # whatever make train shipped last
    config = entry["config"]
    arguments = benchmark.pytorch_arguments("lstm_train")
    options = dict(zip(arguments[1::2], arguments[2::2]))
    assert arguments[0] == "charlstm"
    assert options == {"--mode": "lstm", "--vocab": str(len(entry["vocabulary"])), "--embed": str(config["num_embed"]),
                       "--hidden": str(config["num_hidden"]), "--layers": str(config["num_layers"]),
                       "--seq": str(config["seq_length"]), "--batch": str(config["batch_size"]),
                       "--dropout": str(config["dropout"]), "--lr": str(config["learning_rate"]),
                       "--clip": str(config["clip"]), "--batches": str(benchmark.LSTM_BATCHES),
                       "--warmup": str(benchmark.WARMUP)}


def test_pytorch_runs_the_shipped_dcgan_configuration():
    arguments = benchmark.pytorch_arguments("dcgan_train")
    assert arguments == ["dcgan", "--batch", "64", "--nz", "150", "--ngf", "64", "--ndf", "64",
                         "--batches", str(benchmark.DCGAN_STEPS), "--warmup", str(benchmark.WARMUP)]


def test_only_the_training_figures_have_a_pytorch_reference():
    with pytest.raises(ValueError, match="no PyTorch reference for 'generation'"):
        benchmark.pytorch_arguments("generation")


def test_the_rate_is_read_from_the_reference_line():
    line = "dcgan batch=64 nz=150 ngf=64 ndf=64 threads=2 images_per_s=56.6"
    assert benchmark.pytorch_rate(line) == 56.6
    with pytest.raises(ValueError, match="expected one '<unit>_per_s=<value>'"):
        benchmark.pytorch_rate("Traceback (most recent call last):")


def test_ratios_are_summarised_by_median_and_range():
    assert benchmark.ratio_summary("dcgan_train", [1.3, 0.9, 1.1]) == [
        "dcgan_train_mxnet_over_pytorch 1.10 x",
        "dcgan_train_mxnet_over_pytorch_lowest 0.90 x",
        "dcgan_train_mxnet_over_pytorch_highest 1.30 x"]


def test_a_missing_reference_script_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass its path with --reference"):
        benchmark.compare_with_pytorch("python", tmp_path / "nowhere.py", rounds=1)


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
    assert sum(grouped.values()) == sum(totals.values())


def test_each_kind_of_run_keeps_its_lines_in_the_log_beside_the_other(tmp_path, monkeypatch):
    monkeypatch.setattr(benchmark, "LOG", tmp_path / "benchmark.json")
    benchmark.record("bench", ["threads 2 OpenMP", "matmul_gflops 150.2 GFLOP/s"])
    benchmark.record("compare", ["dcgan_train_mxnet_over_pytorch 0.98 x"])
    benchmark.record("bench", ["matmul_gflops 160.0 GFLOP/s"])  # a later run replaces the earlier of its kind
    runs = benchmark.json.loads((tmp_path / "benchmark.json").read_text())
    assert runs["bench"]["figures"] == {"matmul_gflops": "160.0 GFLOP/s"}
    assert runs["compare"]["figures"] == {"dcgan_train_mxnet_over_pytorch": "0.98 x"}
    assert set(runs["bench"]["processor"]) == {"model_name", "avx512f", "cores"}
    assert runs["bench"]["command"].startswith("python scripts/benchmark.py")


def test_readme_quotes_the_logged_runs():
    runs = benchmark.json.loads(benchmark.LOG.read_text())
    readme = " ".join((benchmark.LOG.parent.parent / "README.md").read_text().split())  # wrapping aside
    bench = {name: text.split()[0] for name, text in runs["bench"]["figures"].items()}
    quoted = [f"{int(bench['lstm_train_chars_per_s']):,} characters per second",
              f"{bench['dcgan_train_images_per_s']} images per second",
              f"{bench['generate_stateful_chars_per_s']} characters per second",
              f"{bench['generate_original_chars_per_s']} characters per second",
              f"{bench['generate_speedup']} times as fast",
              f"{bench['step_fused_ms_per_char']} ms / {bench['step_cells_ms_per_char']} ms",
              f"matrix multiply {bench['matmul_gflops']} GFLOP/s",
              f"{bench['lstm_train_gflops']} GFLOP/s, {bench['lstm_train_vs_matmul']} of it",
              f"{bench['dcgan_train_gflops']} GFLOP/s, {bench['dcgan_train_vs_matmul']} of it"]
    compare = {name: text.split()[0] for name, text in runs["compare"]["figures"].items()}
    for model in benchmark.PYTORCH_FIGURES:
        quoted.append(f"{compare[model + '_mxnet_over_pytorch']} (lowest {compare[model + '_mxnet_over_pytorch_lowest']}, "
                      f"highest {compare[model + '_mxnet_over_pytorch_highest']})")
    assert [figure for figure in quoted if figure not in readme] == []
