"""Start JupyterLab the way `make lab` does: serving the repository, opening on notebooks/.

    python scripts/jupyter_lab.py [more jupyter lab options]

The server's root is the repository, not notebooks/: the notebooks link their diagrams as
../images/*.png, and a server rooted at notebooks/ answers 404 for anything above it.
tests/test_browser.py starts its server through lab_command() too, adding only a port, a token
and --no-browser, so the test sees what a reader sees.
"""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPENS_ON = "/lab/tree/notebooks"  # the file browser in notebooks/, the notebooks listed


def lab_command(root=ROOT, extra_options=()):
    """The jupyter lab command line, for this repository or a copy of it at `root`."""
    command = [sys.executable, "-m", "jupyter", "lab",
               f"--ServerApp.root_dir={root}",
               f"--LabApp.default_url={OPENS_ON}",
               "--ServerApp.ip=127.0.0.1"]  # this machine only
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers often run as root
        command.append("--allow-root")
    return command + list(extra_options)


if __name__ == "__main__":
    command = lab_command(extra_options=sys.argv[1:])
    os.execv(command[0], command)
