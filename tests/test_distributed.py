"""Notebook 4's data-parallel training and scripts/launch_distributed.py, on 127.0.0.1 only.

Real jobs of 1 scheduler + 1 server + 2 workers running notebook 4's own `run_worker`
(through scripts/distributed_worker.py), compared with one process on the global batch.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import helpers

import storage
import launch_distributed
from notebook_code import notebook_namespace

import mxnet as mx  # noqa: E402  (after helpers, which sets the engine and threads)

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "scripts" / "launch_distributed.py"
WORKER = ROOT / "scripts" / "distributed_worker.py"
NOTEBOOK = "04_many_devices_and_machines.ipynb"
# A small model and a few dozen steps: 3 epochs of 12 steps of 8 columns x 20 characters.
SETTINGS = {"NUM_EMBED": 8, "NUM_HIDDEN": 16, "NUM_LAYERS": 2, "SEQ_LENGTH": 20, "GLOBAL_BATCH": 8,
            "TEXT_CHARACTERS": 8 * (20 * 12 + 1), "EPOCHS": 3, "OPTIMIZER": "sgd", "LEARNING_RATE": 1.0,
            "SEED": 7}
TOLERANCE = 1e-5
JOB_TIMEOUT = 120


def job_environment(port):
    # A marker in every process's environment: how we find anything the job left running.
    return {**os.environ, "GENMODELS_TEST_JOB": str(port)}


def processes_of_job(port):
    """PIDs of the live processes whose environment carries this job's marker."""
    marker = f"GENMODELS_TEST_JOB={port}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours
                pass
    return found


def listening_addresses(pids):
    """Local addresses of the TCP sockets in LISTEN state that these processes hold."""
    inodes = set()
    for pid in pids:
        try:
            for link in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(link)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            pass
    addresses = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                hex_address = fields[1].split(":")[0]
                if width == 8:
                    addresses.add(".".join(str(int(hex_address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    addresses.add(f"ipv6:{hex_address}")
    return addresses


def run_job(tmp_path, name, workers=2, step_batch="global", extra=(), timeout=JOB_TIMEOUT, watch=False):
    """Run the launcher on 127.0.0.1; returns (exit code, log, seconds, port, listening addresses seen)."""
    port = launch_distributed.free_port()
    worker = [sys.executable, str(WORKER), "--output", str(tmp_path / name), "--step-batch", step_batch,
              "--settings", json.dumps(SETTINGS), *extra]
    command = [sys.executable, str(LAUNCHER), "--workers", str(workers), "--servers", "1",
               "--port", str(port), "--timeout", str(timeout), "--", *worker]
    started, seen = time.monotonic(), set()
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=job_environment(port))
    while watch and job.poll() is None:
        seen |= listening_addresses(processes_of_job(port))
        time.sleep(0.2)
    log, _ = job.communicate(timeout=timeout + 30)
    return job.returncode, log, time.monotonic() - started, port, seen


def final_weights(folder, rank):
    return [array.asnumpy() for _, array in sorted(mx.nd.load(str(folder / f"rank{rank}.params")).items())]


def largest_difference(weights, reference):
    return max(float(np.abs(a - b).max()) for a, b in zip(weights, reference))


@pytest.fixture(scope="module")
def notebook():
    return notebook_namespace(NOTEBOOK, also=("GluonRNNModel", "loss_function"), **SETTINGS)


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """One process trained on the global batch, the same worker script without a kvstore: the
    reference every distributed run must match."""
    folder = tmp_path_factory.mktemp("single")
    subprocess.run([sys.executable, str(WORKER), "--kvstore", "none", "--output", str(folder),
                    "--settings", json.dumps(SETTINGS)], check=True, capture_output=True,
                   env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    return json.loads((folder / "rank0.json").read_text()), final_weights(folder, 0)


@pytest.fixture(scope="module")
def sync_job(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("jobs")
    code, log, seconds, port, listening = run_job(tmp_path, "sync", watch=True)
    return tmp_path / "sync", code, log, port, listening


def test_the_installed_wheel_has_the_distributed_kvstore():
    assert mx.runtime.Features().is_enabled("DIST_KVSTORE")


def test_every_process_of_the_job_exits_0(sync_job):
    _, code, log, _, _ = sync_job
    assert code == 0, log
    endings = [line for line in log.splitlines() if line.startswith("launcher: ") and " pid " in line]
    assert len(endings) == 4 and all(line.endswith("exit code 0") for line in endings), log


def test_ranks_come_from_the_scheduler_and_cover_0_and_1(sync_job):
    folder = sync_job[0]
    results = [json.loads(path.read_text()) for path in sorted(folder.glob("rank*.json"))]
    assert sorted(result["rank"] for result in results) == [0, 1]
    assert all(result["num_workers"] == 2 and result["columns"] == 4 for result in results)
    assert all(len(result["epochs"]) == SETTINGS["EPOCHS"] and result["epochs"][0]["steps"] == 12
               for result in results)


def test_workers_end_with_bitwise_identical_weights(sync_job):
    folder = sync_job[0]
    rank0, rank1 = final_weights(folder, 0), final_weights(folder, 1)
    assert all(np.array_equal(a, b) for a, b in zip(rank0, rank1))


def test_the_workers_equal_one_process_on_the_global_batch(sync_job, single_process):
    _, reference = single_process
    weights = final_weights(sync_job[0], 0)
    assert largest_difference(weights, reference) <= TOLERANCE
    initial = largest_difference(weights, final_weights_untrained())
    assert initial > 100 * TOLERANCE  # the weights did move: the equality is not trivial


def final_weights_untrained():
    notebook = notebook_namespace(NOTEBOOK, also=("GluonRNNModel", "loss_function"), **SETTINGS)
    index_to_char, _ = notebook["training_text"](SETTINGS["TEXT_CHARACTERS"])
    model = notebook["new_model"](len(index_to_char), [mx.cpu()])
    return [p.data().asnumpy() for _, p in sorted(model.collect_params().items())]


def test_nothing_listens_beyond_the_loopback(sync_job):
    listening = sync_job[4]
    assert listening, "saw no listening socket of the job: the check did not run"
    assert listening == {"127.0.0.1"}


def test_step_with_the_local_batch_fails_the_same_check(tmp_path, single_process):
    code, log, _, _, _ = run_job(tmp_path, "local", step_batch="local")
    assert code == 0, log
    gap = largest_difference(final_weights(tmp_path / "local", 0), single_process[1])
    assert gap > 1000 * TOLERANCE  # the learning rate was doubled, silently


def test_a_worker_that_raises_ends_at_once_with_its_traceback(tmp_path):
    # a Python exception, not os._exit: left to Python's usual exit, ps-lite's shutdown in the
    # raising worker waits for the others, and the job would hang until the timeout
    fail = ["--fail-after-steps", "18", "--fail-rank", "1"]  # in the middle of epoch 2
    code, log, seconds, port, _ = run_job(tmp_path, "fail", extra=fail, timeout=JOB_TIMEOUT)
    assert code == 1, log
    assert seconds < JOB_TIMEOUT / 4, f"the job took {seconds:.0f} s to stop"
    assert "] Traceback (most recent call last):" in log
    assert "] RuntimeError: rank 1: simulated failure after 18 steps" in log
    failed = [line for line in log.splitlines() if line.startswith("launcher: worker#") and " pid " in line]
    assert sorted(line.split()[-1] for line in failed) == ["1", "SIGTERM"], log
    assert processes_of_job(port) == []


def test_a_job_that_hangs_is_stopped_at_the_timeout(tmp_path):
    port = launch_distributed.free_port()
    command = [sys.executable, str(LAUNCHER), "--workers", "2", "--port", str(port), "--timeout", "4", "--",
               sys.executable, "-c", "import time; time.sleep(300)"]
    started = time.monotonic()
    finished = subprocess.run(command, capture_output=True, text=True, env=job_environment(port), timeout=60)
    assert finished.returncode == launch_distributed.TIMEOUT_EXIT_CODE, finished.stdout
    assert time.monotonic() - started < 4 + launch_distributed.STOP_GRACE_SECONDS + 10
    assert "launcher: timeout" in finished.stdout and "killed by SIGTERM" in finished.stdout
    assert processes_of_job(port) == []


def test_the_checkpoint_resumes_the_job_to_the_same_weights(tmp_path, sync_job):
    # rank 0 alone reads the checkpoint and hands its epoch and weights to the others: a folder
    # that rank 1 cannot see must not make it start from epoch 0 (the job would deadlock)
    checkpoints = tmp_path / "checkpoints"
    fail = ["--checkpoints", str(checkpoints), "--fail-after-steps", "30", "--fail-rank", "1"]
    code, log, _, _, _ = run_job(tmp_path, "failed", extra=fail)
    assert code == 1, log
    hidden = ["--checkpoints", str(checkpoints), "--hide-checkpoints-from-rank", "1"]
    code, log, _, _, _ = run_job(tmp_path, "resumed", extra=hidden, timeout=60)
    assert code == 0, log
    assert "rank 0: resuming with 2 epochs done" in log and "rank 1: resuming with 2 epochs done" in log, log
    for rank in (0, 1):
        resumed, uninterrupted = final_weights(tmp_path / "resumed", rank), final_weights(sync_job[0], rank)
        assert all(np.array_equal(a, b) for a, b in zip(resumed, uninterrupted))


def test_a_worker_seeded_differently_still_trains_from_rank_0s_weights(tmp_path, single_process):
    # without the broadcast before the first forward, rank 1's first step uses its own weights
    # and the job ends about 5e-2 from one process, the workers still bitwise equal
    code, log, _, _, _ = run_job(tmp_path, "reseeded", extra=["--reseed-rank", "1"])
    assert code == 0, log
    for rank in (0, 1):
        assert largest_difference(final_weights(tmp_path / "reseeded", rank), single_process[1]) <= TOLERANCE


def test_resuming_with_adam_is_refused_naming_the_optimizer(tmp_path):
    notebook = notebook_namespace(NOTEBOOK, also=("GluonRNNModel", "loss_function"),
                                  **{**SETTINGS, "OPTIMIZER": "adam"})
    index_to_char, _ = notebook["training_text"](SETTINGS["TEXT_CHARACTERS"])
    model = notebook["new_model"](len(index_to_char), [mx.cpu()])
    storage.save_epoch(tmp_path, 0, {"model.params": model.save_parameters}, {"epochs": [{}]})
    with pytest.raises(helpers.ParameterError, match="OPTIMIZER"):
        notebook["resume"](model, tmp_path)
    assert notebook["resume"](model, None) == (0, {"epochs": []})


@pytest.mark.parametrize("arguments, message", [
    (["--workers", "0", "--", "python"], "at least one worker"),
    (["--workers", "2"], "no worker command given"),
])
def test_the_launcher_refuses_a_job_it_cannot_run(arguments, message):
    finished = subprocess.run([sys.executable, str(LAUNCHER), *arguments], capture_output=True, text=True)
    assert finished.returncode == 2 and message in finished.stderr


def test_the_exchange_benchmark_exchanges_the_notebooks_arrays(notebook):
    import exchange_benchmark
    sizes = {name.lower(): notebook[name] for name in ("NUM_EMBED", "NUM_HIDDEN", "NUM_LAYERS")}
    model = notebook["GluonRNNModel"]("lstm", 86, sizes["num_embed"], sizes["num_hidden"], sizes["num_layers"], 0.0)
    model.initialize(mx.init.Xavier())
    shapes = sorted(p.data().shape for p in model.collect_params().values())
    assert shapes == sorted(exchange_benchmark.model_shapes(86, **sizes))


def test_every_number_the_reader_sets_has_an_upper_bound_in_the_rules(notebook):
    # NUM_WORKERS = 100 would start 100 processes on a 2-core machine; SEED = 2**40 would reach NumPy
    rules = notebook["RULES"]
    assert all(rule[2] is not None for rule in rules.values() if isinstance(rule, tuple))
    for name, value in (("NUM_WORKERS", 100), ("SEED", 2**40)):
        with pytest.raises(helpers.ParameterError, match=f"^{name} = {value} "):
            helpers.check_parameters({**{key: notebook[key] for key in rules}, name: value}, rules)


def test_two_cpu_contexts_equal_one(notebook):
    index_to_char, indices = notebook["training_text"](SETTINGS["TEXT_CHARACTERS"])
    train_data = helpers.batchify(indices, SETTINGS["GLOBAL_BATCH"])
    notebook.update(index_to_char=index_to_char, train_data=train_data)
    two, _ = notebook["train_on_devices"]([mx.cpu(0), mx.cpu(1)], epochs=2)
    one, _ = notebook["train_on_devices"]([mx.cpu(0)], epochs=2)
    weights = lambda model: [p.data(mx.cpu(0)).asnumpy() for _, p in sorted(model.collect_params().items())]
    assert largest_difference(weights(two), weights(one)) <= TOLERANCE
    assert largest_difference(weights(two), weights(notebook["new_model"](len(index_to_char), [mx.cpu()]))) \
        > 100 * TOLERANCE


def test_a_stop_that_arrives_while_a_role_starts_waits_until_it_has_started():
    # raised inside Popen, after the fork, the stop would orphan that role (seen once in the suite)
    def stop(number, frame):  # what main() sets
        sys.exit(128 + number)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        started = []
        with pytest.raises(SystemExit) as stopped:
            with launch_distributed.stop_signals_held():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)  # a role being started
                started.append("role")
        assert started == ["role"] and stopped.value.code == 128 + signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is stop  # the usual handler is back
    finally:
        signal.signal(signal.SIGTERM, previous)


def start_sleeping_job(timeout=60, worker_code="import time; time.sleep(300)"):
    """A launcher whose workers run `worker_code`; returns it and its port once all 4 roles run."""
    port = launch_distributed.free_port()
    command = [sys.executable, str(LAUNCHER), "--workers", "2", "--port", str(port), "--timeout", str(timeout),
               "--", sys.executable, "-c", worker_code]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=job_environment(port))
    deadline = time.monotonic() + 30
    while len(processes_of_job(port)) < 5 and time.monotonic() < deadline:  # launcher + 4 roles
        time.sleep(0.1)
    return launcher, port


def wait_until_gone(port, seconds):
    deadline = time.monotonic() + seconds
    while processes_of_job(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    return processes_of_job(port)


def test_the_roles_die_with_a_launcher_killed_by_sigkill():
    launcher, port = start_sleeping_job()
    assert len(processes_of_job(port)) == 5
    launcher.kill()  # no handler runs: only the kernel (PR_SET_PDEATHSIG) can stop the roles
    launcher.communicate(timeout=30)
    assert wait_until_gone(port, 5) == []


def test_the_timeout_names_the_worker_that_stopped_making_progress():
    busy = "import time\nwhile True:\n    sum(range(200_000)); time.sleep(0.02)"
    launcher, port = start_sleeping_job(timeout=8, worker_code=busy)
    deadline = time.monotonic() + 20  # a role is counted from its fork; its environment from its exec
    while True:
        workers = [pid for pid in processes_of_job(port)
                   if b"DMLC_ROLE=worker" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")]
        if len(workers) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(workers) == 2
    time.sleep(1)
    os.kill(workers[1], signal.SIGSTOP)
    log, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == launch_distributed.TIMEOUT_EXIT_CODE, log
    timeout_line = next(line for line in log.splitlines() if line.startswith("launcher: timeout"))
    assert f"(pid {workers[1]})" in timeout_line and "stopped" in timeout_line, log
    assert f"(pid {workers[0]})" not in timeout_line
    assert processes_of_job(port) == []


def test_a_port_in_use_is_named_in_one_line():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        finished = subprocess.run([sys.executable, str(LAUNCHER), "--port", str(port), "--", "true"],
                                  capture_output=True, text=True, timeout=60)
    assert finished.returncode == launch_distributed.PORT_IN_USE_EXIT_CODE
    assert len(finished.stderr.strip().splitlines()) == 1 and finished.stdout == ""
    assert f"port {port}" in finished.stderr and f"pid {os.getpid()}" in finished.stderr


def test_stopping_the_launcher_stops_the_whole_job():
    launcher, port = start_sleeping_job()
    launcher.terminate()  # what a notebook's stop button or a CI timeout sends
    log, _ = launcher.communicate(timeout=30)
    assert launcher.returncode != 0
    assert log.count("killed by SIGTERM") == 4, log
    assert processes_of_job(port) == []
