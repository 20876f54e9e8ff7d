"""README's several-machines recipe, run as written on stand-in machines: Linux network namespaces.

One namespace per host of the recipe (10.0.0.1 the scheduler and the server, 10.0.0.2 and
10.0.0.3 a worker each), joined by veth pairs on a bridge (scripts/netns_cluster.py). Skipped
with the reason when namespaces cannot be made here (not root, no `ip`); with CI=true they must
run, and fail instead. The recipe's worker line gets the tests' small settings and a temporary
output folder; everything else runs as README prints it.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netns_cluster import Cluster, unavailable_reason
from test_distributed import SETTINGS, TOLERANCE, final_weights, largest_difference, single_process  # noqa: F401

import exchange_benchmark

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
NOTEBOOK = ROOT / "notebooks" / "04_many_devices_and_machines.ipynb"
JOB_TIMEOUT = 90
HOST_PLACEHOLDER = "<address of this host>"
HOST_TOKEN = "@HOST@"  # the placeholder while the line is split into words
# README: "9091 and 9092 on 10.0.0.1, 9093 on each worker host"
DOCUMENTED_PORTS = {1: "9091, 9092", 2: "9093", 3: "9093"}

REASON = unavailable_reason()
if REASON and os.environ.get("CI", "").lower() == "true":
    raise RuntimeError(f"CI=true, but network namespaces cannot be made here: {REASON}")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"network namespaces unavailable: {REASON}")


def recipe_block(text):
    """The bash block that holds the recipe (the one that starts a scheduler)."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return next(block for block in blocks if "DMLC_ROLE=scheduler" in block)


def parse_recipe(block):
    """(exports, steps): the exported variables, and (hosts, command line) in order; hosts is a
    list of host numbers, or None for "every host"."""
    exports, steps, hosts = {}, [], None
    for line in block.splitlines():
        if line.startswith("# "):
            hosts = None if line.startswith("# every host") else [int(n) for n in re.findall(r"10\.0\.0\.(\d+)", line)]
        elif line.startswith("export "):
            words = shlex.split(line.replace(HOST_PLACEHOLDER, HOST_TOKEN), comments=True)[1:]
            exports.update(assignment.split("=", 1) for assignment in words)
        elif line.strip():
            steps.append((hosts, line.strip()))
    return exports, steps


def run_recipe(cluster, output, firewall=False, strip_ports=False, timeout=JOB_TIMEOUT):
    """Run README's recipe in `cluster`; returns {"host:line": (exit code, output)} of every role."""
    exports, steps = parse_recipe(recipe_block(README.read_text()))
    if firewall:
        for host, ports in DOCUMENTED_PORTS.items():
            cluster.firewall(host, ports)
    roles = {}
    for hosts, line in steps:
        command = line.rstrip("&").strip().replace(".venv/bin/python", shlex.quote(sys.executable))
        if "distributed_worker.py" in command:
            command = command.replace("outputs/distributed/cluster", shlex.quote(str(output)))
            command += f" --settings {shlex.quote(json.dumps(SETTINGS))}"
        if strip_ports:
            command = re.sub(r"\bPORT=\d+ ", "", command)
        for host in hosts or range(1, len(cluster.hosts) + 1):
            environment = {**os.environ, **{name: value.replace(HOST_TOKEN, cluster.address(host))
                                            for name, value in exports.items()},
                           "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
            if command.startswith("ss "):  # the stale-process check: nothing holds the ports
                checked = cluster.popen(host, ["sh", "-c", command], environment, stdout=subprocess.PIPE, text=True)
                assert checked.communicate(timeout=30)[0] == "" and checked.returncode == 0
                continue
            roles[f"{host}:{command[:40]}"] = cluster.popen(host, ["sh", "-c", command], environment, cwd=ROOT,
                                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                            text=True)
    results = {}
    for name, process in roles.items():
        try:
            results[name] = (process.wait(timeout=timeout), None)
        except subprocess.TimeoutExpired:
            results[name] = (None, None)
            timeout = 1  # the job hangs: the others get a moment, not the whole timeout again
    for name, process in roles.items():
        if process.poll() is None:
            os.killpg(process.pid, 9)
        results[name] = (results[name][0], process.communicate()[0])
    return results


def assert_single_process_result(results, output, single_process):  # noqa: F811
    assert len(results) == 4 and all(code == 0 for code, _ in results.values()), results
    rank0, rank1 = final_weights(output, 0), final_weights(output, 1)
    assert all(np.array_equal(a, b) for a, b in zip(rank0, rank1))
    assert largest_difference(rank0, single_process[1]) <= TOLERANCE


def test_the_notebook_prints_readmes_recipe():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    markdown = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    assert recipe_block(README.read_text()) == recipe_block(markdown)


def test_the_recipe_as_written_gives_the_single_process_result(tmp_path, single_process):  # noqa: F811
    with Cluster(3) as cluster:
        results = run_recipe(cluster, tmp_path / "cluster")
    assert_single_process_result(results, tmp_path / "cluster", single_process)


NO_NFT = pytest.mark.skipif(shutil.which("nft") is None, reason="nft (nftables) is not installed: apt-get install nftables")


@NO_NFT
def test_a_firewall_that_opens_only_the_documented_ports_lets_the_job_run(tmp_path, single_process):  # noqa: F811
    assert "9091 and 9092 on 10.0.0.1, 9093 on each worker host" in " ".join(README.read_text().split())
    with Cluster(3) as cluster:
        results = run_recipe(cluster, tmp_path / "cluster", firewall=True)
    assert_single_process_result(results, tmp_path / "cluster", single_process)


@NO_NFT
def test_without_port_the_same_firewall_stops_the_job(tmp_path):
    # the control: the firewall does bite, and PORT is what makes the documented ports the true ones
    with Cluster(3) as cluster:
        results = run_recipe(cluster, tmp_path / "cluster", firewall=True, strip_ports=True, timeout=15)
    assert any(code != 0 for code, _ in results.values()), results


@pytest.mark.skipif(shutil.which("tc") is None, reason="tc (iproute2) is not installed")
def test_the_exchange_on_links_limited_to_1_gbit(capsys):
    loopback = exchange_benchmark.loopback_exchange(1, rounds=30, repeats=1)[0]
    (limited,), delayed = exchange_benchmark.namespace_exchange(1, rounds=30, repeats=1)  # one repeat
    bytes_per_round = 2 * 4 * sum(int(np.prod(shape)) for shape in exchange_benchmark.model_shapes(
        **exchange_benchmark.MODEL))
    wire_ms = 1000 * 8 * bytes_per_round / 1e9  # the two directions share no link: a lower bound
    with capsys.disabled():
        print(f"\nexchange of {bytes_per_round / 1e6:.2f} MB per round: loopback {loopback:.1f} ms, "
              f"1 Gbit/s namespace link {limited:.1f} ms{'' if delayed else ' (no netem: no delay)'}")
    assert limited >= wire_ms / 2  # each direction carries half the bytes at 1 Gbit/s: the limit holds
