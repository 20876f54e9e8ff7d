"""Run a data-parallel MXNet job on this machine: ps-lite's scheduler, servers and workers.

    python scripts/launch_distributed.py --workers 2 --servers 1 -- python scripts/distributed_worker.py ...

MXNet's pip wheel contains the distributed key-value store (ps-lite, `kvstore='dist_sync'`) but
not dmlc's tracker that starts its processes, so this script does that job, for a run on one host:

- the scheduler and the servers are plain `python -c "import mxnet"` processes: with
  `DMLC_ROLE=scheduler` or `server`, importing mxnet runs that role until the workers finish;
- the workers run your command, with `DMLC_ROLE=worker`. Each worker learns its rank from the
  scheduler (`kv.rank`), not from the order in which this script starts it;
- every process gets `DMLC_PS_ROOT_URI` / `DMLC_PS_ROOT_PORT` (where the scheduler listens),
  `DMLC_NUM_WORKER`, `DMLC_NUM_SERVER`, and `DMLC_NODE_HOST` / `DMLC_INTERFACE` (the address it
  binds to), so that on 127.0.0.1 nothing listens beyond the loopback interface.

ps-lite never notices a process that died: the others wait for it forever. So this script
fails fast: as soon as any process exits with a non-zero code, it stops all the others (each
runs in its own process group, so their children go too) and prints every exit code. A
`--timeout` bounds the whole job; when it strikes, the log names the worker that stopped making
progress first (no CPU time used since). Every role is also tied to this script's life
(`PR_SET_PDEATHSIG`): killed with SIGKILL, the launcher still takes the whole job with it. A
`--port` that something else holds (often the scheduler of a job that was not stopped) is
refused in one line naming the process that holds it. Either way it exits non-zero and leaves
no process behind; run the same command again and a worker that checkpoints resumes.

Exit code: 0 when every process exited 0; 124 on timeout; 2 when the arguments are wrong or the
port is in use; otherwise the first failure's code (1 when that process was killed by a signal).
"""
import argparse
import contextlib
import ctypes
import errno
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

LOOPBACK = "127.0.0.1"
TIMEOUT_EXIT_CODE = 124  # what coreutils' `timeout` returns, so shell scripts can tell the cases apart
STOP_GRACE_SECONDS = 5   # after SIGTERM, how long a process gets before SIGKILL
PORT_IN_USE_EXIT_CODE = 2
PR_SET_PDEATHSIG = 1     # prctl option: the signal the kernel sends a process when its parent dies
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the child of a fork must not load libraries
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class PortInUse(Exception):
    """The scheduler's port is taken; the message names the port and, when found, the process."""


def check_port_free(host, port):
    """Raise PortInUse unless `port` can be bound on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            holder = process_listening_on(port)
            raise PortInUse(f"port {port} on {host} is in use{f' by {holder}' if holder else ''}: stop it "
                            f"(a job that was not stopped? `ss -ltnp 'sport = :{port}'` shows it) or pass "
                            f"another --port") from None


def process_listening_on(port):
    """'pid N (command)' of a process that listens on TCP `port` on this machine, or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            for line in open(table).read().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
        except OSError:
            pass
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if any(os.readlink(f"/proc/{entry}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{entry}/fd")):
                command = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
                return f"pid {entry} ({command})"
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return None


def die_with(launcher_pid):
    """For Popen's preexec_fn: the kernel kills the role when the launcher dies, even by SIGKILL."""
    def set_up():
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != launcher_pid:  # the launcher died before the line above took effect
            os._exit(1)
    return set_up


def free_port(host=LOOPBACK):
    """A TCP port nobody listens on right now (the scheduler binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def cpu_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class Process:
    """One role of the job: its label, its command and the running subprocess."""

    def __init__(self, label, role, command, environment, log):
        self.label, self.role, self.command = label, role, command
        # start_new_session: a process group of its own, so stopping it stops its children too
        self.popen = subprocess.Popen(command, env=environment, start_new_session=True,
                                      preexec_fn=die_with(os.getpid()),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, errors="replace")
        self.cpu_ticks, self.progressed_at, self.state = -1, time.monotonic(), "?"
        self.reader = threading.Thread(target=self._relay, args=(log,), daemon=True)
        self.reader.start()

    def _relay(self, log):
        for line in self.popen.stdout:
            log(f"[{self.label}] {line.rstrip()}")

    def sample_progress(self, now):
        """Note the time if the process used CPU since the last sample (its progress, as seen
        from outside: a worker waiting for a stopped or stuck one uses none)."""
        try:
            fields = open(f"/proc/{self.popen.pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            return
        self.state, ticks = fields[0], int(fields[11]) + int(fields[12])  # state, utime + stime
        if ticks != self.cpu_ticks:
            self.cpu_ticks, self.progressed_at = ticks, now

    def signal_group(self, signal_number):
        try:
            os.killpg(self.popen.pid, signal_number)
        except ProcessLookupError:  # the whole group is gone already
            pass

    def group_alive(self):
        try:
            os.killpg(self.popen.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def describe_exit(self):
        code = self.popen.returncode
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"


def role_environment(role, num_workers, num_servers, host, port, threads):
    environment = dict(os.environ)
    environment.update({
        "DMLC_ROLE": role,
        "DMLC_PS_ROOT_URI": host, "DMLC_PS_ROOT_PORT": str(port),
        "DMLC_NUM_WORKER": str(num_workers), "DMLC_NUM_SERVER": str(num_servers),
        "DMLC_NODE_HOST": host,          # the address this process binds to and announces
        "OMP_NUM_THREADS": str(threads),  # share the cores instead of every process taking all of them
        "PYTHONUNBUFFERED": "1",          # lines reach the log as they are printed
    })
    # The job's processes and threads outnumber the cores: an OpenMP thread that spins while it
    # waits for its siblings takes the core another process needs (steps many times slower here).
    environment.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if host == LOOPBACK:
        environment["DMLC_INTERFACE"] = "lo"
    return environment


def launch(command, num_workers=2, num_servers=1, host=LOOPBACK, port=None, timeout=600,
           threads_per_worker=None, log=print):
    """Run the job; returns the launcher's exit code (see the module's docstring)."""
    if num_workers < 1 or num_servers < 1:
        raise ValueError(f"a job needs at least one worker and one server, got "
                         f"{num_workers} workers and {num_servers} servers")
    if not command:
        raise ValueError("no worker command given: put it after `--`, e.g. -- python train.py")
    if port:
        check_port_free(host, port)  # before anything starts: one line, and no job half started
    port = port or free_port(host)
    threads_per_worker = threads_per_worker or max(1, cpu_cores() // num_workers)
    log_lock = threading.Lock()

    def locked_log(text):
        with log_lock:
            log(text)

    serve = [sys.executable, "-c", "import mxnet"]  # importing mxnet runs the scheduler / server role
    roles = [("scheduler", "scheduler", serve, 1)]
    roles += [(f"server#{index + 1}", "server", serve, 1) for index in range(num_servers)]
    roles += [(f"worker#{index + 1}", "worker", command, threads_per_worker) for index in range(num_workers)]
    locked_log(f"launcher: scheduler on {host}:{port}, {num_servers} server(s), {num_workers} worker(s) "
               f"with {threads_per_worker} thread(s) each, timeout {timeout:g} s")
    locked_log(f"launcher: worker command: {shlex.join(command)}")
    processes, outcome = [], None
    deadline = time.monotonic() + timeout
    try:
        for label, role, role_command, threads in roles:
            environment = role_environment(role, num_workers, num_servers, host, port, threads)
            with stop_signals_held():
                processes.append(Process(label, role, role_command, environment, locked_log))
        outcome = supervise(processes, deadline, locked_log, timeout)
    finally:  # also when the launcher itself is interrupted (Ctrl-C, SIGTERM)
        stop_all(processes)
        for process in processes:
            locked_log(f"launcher: {process.label:10} pid {process.popen.pid:>7}  {process.describe_exit()}")
    return outcome if outcome is not None else 1


@contextlib.contextmanager
def stop_signals_held():
    """Hold SIGTERM and Ctrl-C until the block is done, then act on them.

    Raised inside `subprocess.Popen`, after the fork, the stop would leave that process running
    with no `Process` to stop it; held, it arrives once the process is in the list `stop_all` reads.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        yield
        return
    held = []
    previous = {number: signal.signal(number, lambda number, frame: held.append(number))
                for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in held[:1]:
            signal.raise_signal(number)  # the usual handler now: SystemExit or KeyboardInterrupt


def supervise(processes, deadline, log, timeout=None):
    """Wait until every process exited 0 (returns 0), one failed, or the deadline passed."""
    sampled = 0.0
    while True:
        now = time.monotonic()
        if now - sampled >= 0.5:
            for process in processes:
                process.sample_progress(now)
            sampled = now
        for process in processes:
            code = process.popen.poll()
            if code not in (None, 0):
                log(f"launcher: {process.label} failed ({process.describe_exit()}); stopping the job")
                return code if code > 0 else 1
        if all(process.popen.poll() == 0 for process in processes):
            log("launcher: every process exited 0")
            return 0
        if time.monotonic() > deadline:
            log(f"launcher: timeout after {timeout:g} s: {stalled_worker(processes, time.monotonic())}; "
                "stopping the job")
            return TIMEOUT_EXIT_CODE
        time.sleep(0.05)


def stalled_worker(processes, now, idle_seconds=2.0):
    """A sentence naming the worker that stopped making progress first, if any did."""
    workers = [p for p in processes if p.role == "worker" and p.popen.poll() is None]
    if not workers:
        return "the scheduler or a server is still running after every worker ended"
    first = min(workers, key=lambda process: process.progressed_at)
    idle = now - first.progressed_at
    if idle < idle_seconds:
        return "every worker was still using CPU (raise --timeout if the job is simply slow)"
    how = " and is stopped (SIGSTOP or a debugger)" if first.state in ("T", "t") else ""
    return (f"{first.label} (pid {first.popen.pid}) made no progress for the last {idle:.0f} s{how}, "
            f"the first worker to stop; the others wait for it")


def stop_all(processes):
    """SIGTERM every process group still alive, then SIGKILL whatever survives the grace period."""
    for process in processes:
        if process.popen.poll() is None or process.group_alive():
            process.signal_group(signal.SIGTERM)
            process.signal_group(signal.SIGCONT)  # a stopped process acts on SIGTERM only once it runs
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        if process.group_alive():
            process.signal_group(signal.SIGKILL)
            process.popen.wait()
    for process in processes:
        process.reader.join(timeout=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     usage="%(prog)s [options] -- command to run on every worker")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--servers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument("--host", default=LOOPBACK, help="address every role binds to (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="scheduler's port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before the job is stopped")
    parser.add_argument("--threads-per-worker", type=int, default=None,
                        help="OpenMP threads per worker (default: the CPU cores divided among the workers)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    # A SIGTERM to the launcher (a notebook's stop button, a CI timeout) must still stop the job:
    # turn it into an exception so that launch()'s `finally` runs.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    try:
        sys.exit(launch(command, args.workers, args.servers, args.host, args.port, args.timeout,
                        args.threads_per_worker, log=lambda text: print(text, flush=True)))
    except ValueError as error:
        parser.error(str(error))
    except PortInUse as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        sys.exit(PORT_IN_USE_EXIT_CODE)
    except KeyboardInterrupt:  # Ctrl-C: launch() has stopped every process on its way out
        sys.exit(130)


if __name__ == "__main__":
    main()
