"""A fresh clone with no data and no network: the notebooks' Run All, and `make test` itself.

This is the path a new reader takes: clone, `make lab`, Run All, before downloading anything.
The clone is a copy of what git would check out (tests/repo_copy.py); GENMODELS_DATA_DIR and the
suite's other GENMODELS_* settings are removed (GENMODELS_SMOKE too: the default mode is what
runs), and papermill executes each notebook there. No network: as root, in a network namespace
of its own (`unshare -n`, loopback only, so the kernel still talks to papermill); otherwise the
notebooks' download URLs and the proxy variables point at a closed loopback port.

Each notebook must finish without an error output and without stderr output that is not ours
(repo_copy.foreign_stderr), download nothing, and notebook 3 must show the shipped generator's
faces. The notebooks the browser test runs (IN_THE_BROWSER, on the same kind of copy) run here
only when it cannot: each notebook's Run All without data costs the suite once.

`make test` on such a clone: the tests that need the data sets (conftest.py's needs_data) are
collected and set up there, offline, and must all be skipped with one line, none failed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import repo_copy

ROOT = repo_copy.ROOT
ALL_NOTEBOOKS = sorted(path.name for path in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
# Run All in JupyterLab by tests/test_browser.py, without data, whenever Chromium is there.
IN_THE_BROWSER = {name for name in ALL_NOTEBOOKS if name.startswith(("02", "03"))}
BROWSER_RUNS = Path("/usr/bin/chromium").exists() or os.environ.get("CI") == "true"  # CI fails without it
NOTEBOOKS = [name for name in ALL_NOTEBOOKS if not (BROWSER_RUNS and name in IN_THE_BROWSER)]
# The default mode takes seconds a cell. papermill stops a cell after CELL_SECONDS and shuts its
# kernel down; NOTEBOOK_SECONDS only guards against papermill itself hanging.
CELL_SECONDS = 300
NOTEBOOK_SECONDS = 1200
# notebook 4 trains from scratch on the text and has no shipped weights to sample from
NEEDS_THE_TEXT = {name for name in NOTEBOOKS if name.startswith("04")}
DATA_PREVIEW = "data-preview"  # scripts/run_notebooks.py's tag for cells that show the data set


def isolated_network_prefix():
    """The command prefix that runs a command with only a loopback network, or None if impossible."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return None
    prefix = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "offline"]
    try:
        probe = subprocess.run(prefix + [sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 9), 1)"],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # Connection refused on loopback means: a namespace was made, and its loopback is up.
    return prefix if "ConnectionRefusedError" in probe.stderr else None


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    folder = repo_copy.copy_clone(tmp_path_factory.mktemp("fresh-clone") / "repository")
    if folder is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the fresh-clone test, but `git ls-files` failed in the checkout")
        pytest.skip("not a git checkout: the fresh-clone test copies the files git lists")
    prefix = isolated_network_prefix()
    env = repo_copy.reader_environment()
    if prefix is None:  # no namespace: the downloads go to a port where nothing listens
        env.update(repo_copy.offline_urls(repo_copy.closed_port()))
    print(f"fresh clone in {folder}; network: {'none (unshare -n)' if prefix else 'downloads sent to a closed port'}")
    data_before = sorted(path.relative_to(folder).as_posix() for path in (folder / "data").rglob("*"))
    return {"folder": folder, "prefix": prefix or [], "env": env, "data_before": data_before}


def image_outputs(cell):
    return [output for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_on_a_fresh_clone_without_data_or_network(clone, name):
    folder = clone["folder"]
    executed = folder / "outputs" / f"executed_{name}"
    executed.parent.mkdir(exist_ok=True)
    command = clone["prefix"] + [
        sys.executable, "-m", "papermill", str(folder / "notebooks" / name), str(executed),
        "--cwd", str(folder / "notebooks"), "--no-progress-bar", "--kernel", "python3",
        "--execution-timeout", str(CELL_SECONDS)]
    started = time.perf_counter()
    result = subprocess.run(command, env=clone["env"], cwd=folder, capture_output=True, text=True,
                            timeout=NOTEBOOK_SECONDS)
    seconds = time.perf_counter() - started
    print(f"{name}: papermill took {seconds:.0f} s")
    cells = json.loads(executed.read_text())["cells"] if executed.exists() else []
    errors = [f"cell {index}: {output['ename']}: {output['evalue']}" for index, cell in enumerate(cells)
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    # papermill's own traceback says nothing about the notebook: keep what follows it
    papermill_says = result.stderr.rsplit("PapermillExecutionError", 1)[-1][-2000:]
    assert repo_copy.foreign_stderr(cells) == [], f"{name}: stderr output that is not ours"
    stops = [output for cell in cells for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    if name in NEEDS_THE_TEXT and stops:
        # nothing to train on without the text: if it stops, at once and saying why in one line
        assert [output["ename"] for output in stops] == ["DataUnavailable"], "\n".join(errors) or papermill_says
        assert len(stops[0]["traceback"]) == 1 and "nietzsche.txt" in stops[0]["traceback"][0], stops[0]["traceback"]
        return
    assert result.returncode == 0 and not errors, (
        f"{name} failed on a fresh clone without data or network (exit {result.returncode}, {seconds:.0f} s):\n"
        + ("\n".join(errors) or papermill_says))

    data_after = sorted(path.relative_to(folder).as_posix() for path in (folder / "data").rglob("*"))
    assert data_after == clone["data_before"], f"{name} put data into the clone: {set(data_after) - set(clone['data_before'])}"

    if name.startswith("03"):
        generated = [index for index, cell in enumerate(cells) if cell["cell_type"] == "code" and image_outputs(cell)
                     and DATA_PREVIEW not in cell.get("metadata", {}).get("tags", [])]
        # the shipped generator's faces, and a walk through its latent space
        assert len(generated) >= 2, f"{name}: cells that show generated images: {generated}"


def test_make_test_skips_what_needs_the_data_in_one_line_each_and_fails_nothing(clone):
    """The data-dependent tests' collection and set-up on the clone, offline: all skipped, none failed."""
    import conftest

    env = {**{name: value for name, value in clone["env"].items() if name != "CI"}, "COLUMNS": "1000"}  # whole reasons
    command = clone["prefix"] + [sys.executable, "-m", "pytest", "-m", "needs_data", "-v", "-p", "no:cacheprovider"]
    result = subprocess.run(command, env=env, cwd=clone["folder"], capture_output=True, text=True, timeout=600)
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0 and re.fullmatch(r"=+ \d+ skipped, \d+ deselected in .*", summary), result.stdout[-3000:]
    skipped = re.findall(r"^(\S+?)::\S.*? SKIPPED \((.*)\)", result.stdout, flags=re.M)
    reasons = {reason for _, reason in skipped if reason.startswith("needs ")}  # others: a test's own skipif
    assert reasons <= {f"needs {data}: {conftest.HOW_TO_GET[data]} (data/README.md says where to get it)"
                       for data in conftest.HOW_TO_GET}, reasons
    files = {Path(path).stem for path, _ in skipped}  # nbval's test names drop .ipynb
    assert files == {Path(file_name).stem for file_name, _, _ in conftest.NEEDS_DATA}, files  # no stale entry
    shown = re.findall(r"^SKIPPED \[\d+\] \S+: needs .*$", result.stdout, flags=re.M)
    assert len(shown) == len(reasons), shown  # -rs: one line per missing data set


def test_in_ci_with_the_data_beside_the_clone_a_missing_data_set_fails(tmp_path, monkeypatch):
    import conftest

    monkeypatch.setattr(conftest, "ROOT", tmp_path / "clone")  # its data/ is empty
    empty = {"GENMODELS_DATA_DIR": str(tmp_path)}
    assert conftest.data_verdict(conftest.TEXT, {**empty, "CI": "true"})[0] == "fail"
    assert conftest.data_verdict(conftest.TEXT, empty)[0] == "skip"
    (tmp_path / "nietzsche.txt").write_text("the text")
    assert conftest.data_verdict(conftest.TEXT, {**empty, "CI": "true"}) is None
