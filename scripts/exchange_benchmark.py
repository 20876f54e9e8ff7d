"""What notebook 4's parameter-server exchange costs, measured in isolation and repeated.

    python scripts/exchange_benchmark.py                 # writes logs/distributed_exchange.json
    python scripts/exchange_benchmark.py --netns         # also on namespace links limited to 1 Gbit/s (root)

The exchange: one server and 1 or 2 workers that do nothing but what `trainer.step` does with
servers, a `pushpull` of notebook 4's model's 11 arrays (the gradient up, the weights down),
`--rounds` times per repeat, `--repeats` times; no training, so the number is the exchange alone.
The whole step: the worker script on the notebook's benchmark settings, as one plain process and
as one worker with one server, also repeated; their difference is what the machinery adds to a
step besides the exchange itself. The log keeps every repeat, the median and the range, the
processor, the load average and the command, so that notebook 4's projection reads its numbers
from here.
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts")]
LOG = ROOT / "logs" / "distributed_exchange.json"
WORKER = ROOT / "scripts" / "distributed_worker.py"
# notebook 4's model (its parameters cell): vocabulary 86, embedding 32, 2 LSTM layers of 128
MODEL = {"vocab_size": 86, "num_embed": 32, "num_hidden": 128, "num_layers": 2}
# the whole step: two epochs of TIMED_STEPS steps of notebook 4's 32 columns x 50 characters, the
# second timed (the first warms up)
TIMED_STEPS = 60
STEP_SETTINGS = {"TEXT_CHARACTERS": 32 * (50 * TIMED_STEPS + 1), "EPOCHS": 2}


def model_shapes(vocab_size, num_embed, num_hidden, num_layers):
    """The shapes of GluonRNNModel's arrays: embedding, 4 per fused LSTM layer, decoder weight and bias."""
    shapes = [(vocab_size, num_embed)]
    for layer in range(num_layers):
        inputs = num_embed if layer == 0 else num_hidden
        shapes += [(4 * num_hidden, inputs), (4 * num_hidden, num_hidden), (4 * num_hidden,), (4 * num_hidden,)]
    return shapes + [(vocab_size, num_hidden), (vocab_size,)]


def exchange_worker(rounds, repeats, result_file, warm_up=20):
    """Run inside a job: time `rounds` pushpulls of the model's arrays, `repeats` times."""
    import mxnet as mx
    kvstore = mx.kv.create("dist_sync")
    shapes = model_shapes(**MODEL)
    weights = [mx.nd.zeros(shape) for shape in shapes]
    gradients = [mx.nd.ones(shape) * 1e-3 for shape in shapes]
    keys = list(range(len(shapes)))
    kvstore.set_optimizer(mx.optimizer.SGD(learning_rate=0.0))  # the servers run an update, as in training
    kvstore.init(keys, weights)
    milliseconds = []
    for repeat in range(repeats + 1):  # repeat 0 warms up
        count = warm_up if repeat == 0 else rounds
        started = time.perf_counter()
        for _ in range(count):
            for key in reversed(keys):  # as the Trainer does: the last layer's gradient first
                kvstore.pushpull(key, gradients[key], out=weights[key], priority=-key)
            mx.nd.waitall()
        if repeat:
            milliseconds.append(1000 * (time.perf_counter() - started) / count)
    Path(result_file.format(rank=kvstore.rank)).write_text(json.dumps({"rank": kvstore.rank,
                                                                       "ms_per_round": milliseconds}))


def summary(values):
    return {"repeats": [round(value, 3) for value in values], "median": round(statistics.median(values), 3),
            "min": round(min(values), 3), "max": round(max(values), 3)}


def exchange_command(rounds, repeats, folder):
    return [sys.executable, str(Path(__file__).resolve()), "--worker", "--rounds", str(rounds),
            "--repeats", str(repeats), "--result", str(folder / "rank{rank}.json")]


def collect(folder, workers):
    """Per repeat, the slowest worker's ms per round (synchronous workers wait for each other)."""
    results = [json.loads(path.read_text())["ms_per_round"] for path in sorted(folder.glob("rank*.json"))]
    if len(results) != workers:
        raise RuntimeError(f"expected {workers} result files in {folder}, found {len(results)}")
    return [max(values) for values in zip(*results)]


def loopback_exchange(workers, rounds, repeats):
    import launch_distributed
    with tempfile.TemporaryDirectory() as folder:
        code = launch_distributed.launch(exchange_command(rounds, repeats, Path(folder)), num_workers=workers,
                                         timeout=600, log=lambda line: None)
        if code != 0:
            raise RuntimeError(f"the loopback exchange job with {workers} worker(s) failed: exit code {code}")
        return collect(Path(folder), workers)


def namespace_exchange(workers, rounds, repeats, rate="1gbit", delay="0.2ms"):
    """The same job with the scheduler and server on 10.0.0.1 and each worker on a host of its own,
    every link limited to `rate` (and `delay` where the kernel has netem); returns (values, delay applied)."""
    from netns_cluster import Cluster
    with tempfile.TemporaryDirectory() as folder, Cluster(1 + workers) as cluster:
        cluster.limit_links(rate, delay)
        common = {**os.environ, "DMLC_PS_ROOT_URI": cluster.address(1), "DMLC_PS_ROOT_PORT": "9091",
                  "DMLC_NUM_WORKER": str(workers), "DMLC_NUM_SERVER": "1", "DMLC_INTERFACE": "eth0",
                  "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
        serve = [sys.executable, "-c", "import mxnet"]
        on_host = lambda host, role: {**common, "DMLC_ROLE": role, "DMLC_NODE_HOST": cluster.address(host)}
        roles = [cluster.popen(1, serve, on_host(1, "scheduler"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                 cluster.popen(1, serve, on_host(1, "server"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        roles += [cluster.popen(host, exchange_command(rounds, repeats, Path(folder)), on_host(host, "worker"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for host in range(2, 2 + workers)]
        for role in roles:
            if role.wait(timeout=600) != 0:
                raise RuntimeError(f"a role of the namespace exchange job failed: exit code {role.returncode}")
        return collect(Path(folder), workers), cluster.delay_applied


def whole_step(repeats):
    """ms per step of the timed epoch: one plain process, and one worker with one server."""
    import launch_distributed
    settings = json.dumps(STEP_SETTINGS)
    alone, with_server = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run([sys.executable, str(WORKER), "--kvstore", "none", "--output", folder,
                            "--settings", settings], check=True, capture_output=True,
                           env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
            alone.append(per_step(Path(folder)))
        with tempfile.TemporaryDirectory() as folder:
            code = launch_distributed.launch([sys.executable, str(WORKER), "--output", folder, "--settings", settings],
                                             num_workers=1, timeout=900, log=lambda line: None)
            if code != 0:
                raise RuntimeError(f"the one-worker step job failed: exit code {code}")
            with_server.append(per_step(Path(folder)))
    return alone, with_server


def per_step(folder):
    epoch = json.loads((folder / "rank0.json").read_text())["epochs"][-1]
    return {"ms": 1000 * epoch["seconds"] / epoch["steps"], "in_step_ms": 1000 * epoch["step_seconds"] / epoch["steps"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=280, help="pushpulls of all arrays per repeat (default 280)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of every measurement (default 3)")
    parser.add_argument("--netns", action="store_true", help="also measure across namespaces on 1 Gbit/s links")
    parser.add_argument("--output", type=Path, default=LOG)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        exchange_worker(args.rounds, args.repeats, args.result)
        return
    parameters = sum(math.prod(shape) for shape in model_shapes(**MODEL))
    log = {"what": "notebook 4's exchange: pushpull of the model's arrays through one server (ms per round, "
                   "the slowest worker of each repeat); whole steps of the worker script (ms per step)",
           "command": "python scripts/exchange_benchmark.py" + (" --netns" if args.netns else "")
                      + f" --rounds {args.rounds} --repeats {args.repeats}",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "processor": platform.processor() or
           platform.machine(), "cores": len(os.sched_getaffinity(0)), "load_average_at_start": os.getloadavg()[0],
           "model": {**MODEL, "parameters": parameters, "arrays": len(model_shapes(**MODEL)),
                     "bytes_per_worker_per_round": 2 * 4 * parameters},
           "rounds": args.rounds, "exchange_ms": {}}
    for workers in (1, 2):
        log["exchange_ms"][f"loopback, {workers} worker{'s' * (workers > 1)}"] = summary(
            loopback_exchange(workers, args.rounds, args.repeats))
        print(f"loopback, {workers} worker(s): {log['exchange_ms']}", flush=True)
    if args.netns:
        for workers in (1, 2):
            values, delayed = namespace_exchange(workers, args.rounds, args.repeats)
            link = "1 Gbit/s" + (" + 0.2 ms" if delayed else "")
            log["namespace_link"] = ("netem: 1 Gbit/s, 0.2 ms delay" if delayed
                                     else "tbf: 1 Gbit/s, no added delay (this kernel has no netem)")
            log["exchange_ms"][f"namespaces, {link}, {workers} worker{'s' * (workers > 1)}"] = summary(values)
            print(f"namespaces, {workers} worker(s): {summary(values)}", flush=True)
    alone, with_server = whole_step(args.repeats)
    log["step_settings"] = {**STEP_SETTINGS, "global_batch": 32, "seq_length": 50, "timed_steps": TIMED_STEPS}
    log["step_ms"] = {"1 process": summary([run["ms"] for run in alone]),
                      "1 process, in step()": summary([run["in_step_ms"] for run in alone]),
                      "1 worker + 1 server": summary([run["ms"] for run in with_server]),
                      "1 worker + 1 server, in step()": summary([run["in_step_ms"] for run in with_server])}
    log["load_average_at_end"] = os.getloadavg()[0]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(log, indent=1) + "\n")
    print(json.dumps(log, indent=1))


if __name__ == "__main__":
    main()
