"""What a fresh clone holds, copied to a temporary folder, for the tests that run notebooks there.

The files are those git tracks plus the new ones it would track (not ignored), as they are in
the working tree now, so a test sees uncommitted edits, and never data/, checkpoints/ or outputs/;
except the notebooks, which are copied as committed (a working copy saved by JupyterLab's
autosave is not what ships; conftest.py's header names the ones that differ).
"""
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Variables that point the notebooks away from the copy's own folders, or change their mode;
# a test that means to set one sets it after removing these.
READER_UNSET = ["GENMODELS_SMOKE", "GENMODELS_DATA_DIR", "GENMODELS_CHECKPOINT_DIR", "GENMODELS_OUTPUT_DIR",
                "GENMODELS_WEIGHTS_DIR", "GENMODELS_FACES_URL", "GENMODELS_NIETZSCHE_URL"]


def clone_files():
    """Paths (relative to the repository) a clone would have, if `git` can say; else None."""
    try:
        listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                 cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [Path(name) for name in listing.decode().split("\0") if name]


def _git(*arguments):
    return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, check=True, timeout=60).stdout


def changed_notebooks():
    """Tracked notebooks whose working copy differs from HEAD: {relative path: committed bytes}."""
    try:
        names = _git("diff", "--name-only", "-z", "HEAD", "--", "notebooks/*.ipynb").decode().split("\0")
        return {name: _git("show", f"HEAD:{name}") for name in names if name and (ROOT / name).is_file()}
    except (OSError, subprocess.SubprocessError):  # not a git checkout: nothing to compare with
        return {}


def copy_clone(target):
    """Copy the clone's files into `target`; returns `target`, or None when git cannot list them."""
    files = clone_files()
    if files is None:
        return None
    committed = changed_notebooks()
    for relative in files:
        source = ROOT / relative
        if source.is_file():  # a tracked file deleted in the working tree is not in a fresh clone
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            if relative.as_posix() in committed:
                (target / relative).write_bytes(committed[relative.as_posix()])
            else:
                shutil.copy2(source, target / relative)
    return target


def closed_port():
    """A loopback port nothing listens on: a URL pointing there fails at once, with no network."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def offline_urls(port):
    """Environment that sends the notebooks' downloads to a closed loopback port."""
    dead = f"http://127.0.0.1:{port}"
    return {"GENMODELS_FACES_URL": f"{dead}/faces.tar.gz",
            "GENMODELS_NIETZSCHE_URL": f"{dead}/nietzsche.txt",
            # anything else that honours the usual proxy variables (pooch, requests, urllib)
            "http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead,
            "no_proxy": "", "NO_PROXY": ""}


def reader_environment(**extra):
    """This process's environment without the suite's GENMODELS_* settings, plus `extra`."""
    env = {name: value for name, value in os.environ.items() if name not in READER_UNSET}
    env.update(extra)
    return env


# Lines a notebook of ours may write to stderr: tqdm's progress bars (training, downloads). Any
# other stderr output in a notebook (a library's warning, MXNet's own log) is noise a reader sees
# as a red box, and the notebook tests fail on it.
OUR_STDERR = re.compile(r"^(?:.*\d+%\|.*\|.*|\s*)$")


def foreign_stderr(cells):
    """The stderr lines of a notebook's outputs that are not ours, each with its code cell's index."""
    found = []
    code_cells = [cell for cell in cells if cell.get("cell_type") == "code"]
    for index, cell in enumerate(code_cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = "".join(output.get("text", ""))
                found += [f"code cell {index}: {line[:200]!r}" for line in re.split(r"[\r\n]+", text)
                          if not OUR_STDERR.match(line)]
    return found
