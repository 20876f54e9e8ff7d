"""Stand-in machines for notebook 4's several-machines recipe: Linux network namespaces.

Each "host" is a network namespace with one interface, `eth0`, at 10.0.0.<n>/24, joined to the
others through a bridge that lives in a namespace of its own (a switch), by veth pairs. Nothing
is added to this machine's own network: deleting the namespaces removes every interface. Needs
root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) and the `ip` command; `tc` to limit the links and `nft`
for a firewall. Used by tests/test_distributed_netns.py and scripts/exchange_benchmark.py.

    with Cluster(3) as cluster:          # hosts 10.0.0.1, 10.0.0.2, 10.0.0.3
        cluster.firewall(1, "9091-9093")  # host 1 accepts new TCP connections on these ports only
        cluster.limit_links("1gbit", "0.2ms")
        process = cluster.popen(1, ["python", "-c", "import mxnet"], environment)
"""
import os
import shutil
import subprocess

SUBNET = "10.0.0"


def unavailable_reason():
    """None when namespaces can be made here; otherwise why not, in one line."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (or CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    name = f"gmprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def run(*command):
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed: {finished.stderr.strip()}")
    return finished.stdout


class Cluster:
    """`hosts` namespaces on one bridge; host n (from 1) has address 10.0.0.n on `eth0`."""

    def __init__(self, hosts):
        self.prefix = f"gm{os.getpid()}"
        self.switch = f"{self.prefix}sw"
        self.hosts = [f"{self.prefix}h{index}" for index in range(1, hosts + 1)]
        self.processes = []
        self.delay_applied = None

    def address(self, host):
        return f"{SUBNET}.{host}"

    def __enter__(self):
        try:
            run("ip", "netns", "add", self.switch)
            run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
            run("ip", "-n", self.switch, "link", "set", "br0", "up")
            for index, namespace in enumerate(self.hosts, start=1):
                run("ip", "netns", "add", namespace)
                run("ip", "-n", namespace, "link", "set", "lo", "up")
                run("ip", "link", "add", "eth0", "netns", namespace, "type", "veth",
                    "peer", "name", f"port{index}", "netns", self.switch)
                run("ip", "-n", self.switch, "link", "set", f"port{index}", "master", "br0", "up")
                run("ip", "-n", namespace, "addr", "add", f"{self.address(index)}/24", "dev", "eth0")
                run("ip", "-n", namespace, "link", "set", "eth0", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exception):
        self.close()

    def popen(self, host, command, environment, **options):
        """Start `command` inside host `host`'s namespace."""
        process = subprocess.Popen(["ip", "netns", "exec", self.hosts[host - 1], *command], env=environment,
                                   start_new_session=True, **options)
        self.processes.append(process)
        return process

    def firewall(self, host, ports):
        """Host `host` accepts new TCP connections on `ports` (nft syntax: "9091-9093") only."""
        rules = ("table inet genmodels {\n chain input {\n  type filter hook input priority 0; policy drop;\n"
                 "  ct state established,related accept\n  iif lo accept\n"
                 f"  tcp dport {{ {ports} }} accept\n }}\n}}\n")
        subprocess.run(["ip", "netns", "exec", self.hosts[host - 1], "nft", "-f", "-"], input=rules,
                       text=True, check=True, capture_output=True)

    def limit_links(self, rate, delay):
        """Every host's outgoing link limited to `rate`, with `delay` added where the kernel has
        netem (sets self.delay_applied); otherwise a token bucket gives the rate alone."""
        for namespace in self.hosts:
            netem = subprocess.run(["ip", "netns", "exec", namespace, "tc", "qdisc", "add", "dev", "eth0", "root",
                                    "netem", "rate", rate, "delay", delay], capture_output=True, text=True)
            self.delay_applied = netem.returncode == 0
            if not self.delay_applied:
                run("ip", "netns", "exec", namespace, "tc", "qdisc", "add", "dev", "eth0", "root",
                    "tbf", "rate", rate, "burst", "256kb", "latency", "10ms")

    def close(self):
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, 9)
                except ProcessLookupError:
                    pass
                process.wait()
        for namespace in [*self.hosts, self.switch]:
            # `ip netns pids` then kill: a namespace whose processes live on cannot be removed
            pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
