"""Start JupyterLab the way `make lab` does: serving the repository, opening on notebooks/.

    python scripts/jupyter_lab.py [more jupyter lab options]

The server's root is the repository, not notebooks/: the notebooks link their diagrams as
../images/*.png, and a server rooted at notebooks/ answers 404 for anything above it.
JupyterLab's own defaults change in one way (SETTINGS_OVERRIDES, written to the overrides.json
of its application folder in .venv): it does not ask whether to fetch Jupyter's news, and
fetches none, nor checks for updates.
tests/test_browser.py starts its server through lab_command() too, adding only a port, a token
and --no-browser, so the test sees what a reader sees.
"""
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPENS_ON = "/lab/tree/notebooks"  # the file browser in notebooks/, the notebooks listed
# "fetchNews": "false" rather than the default "none", which shows a pop-up asking the reader.
SETTINGS_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                                       "checkForUpdates": False}}


def write_settings_overrides():
    """Merge SETTINGS_OVERRIDES into JupyterLab's overrides.json (defaults a reader's own settings
    still override); returns its path."""
    from jupyterlab.commands import get_app_dir

    path = Path(get_app_dir()) / "settings" / "overrides.json"
    current = json.loads(path.read_text()) if path.is_file() else {}
    merged = {**current, **{plugin: {**current.get(plugin, {}), **values}
                            for plugin, values in SETTINGS_OVERRIDES.items()}}
    if merged != current:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged, indent=2) + "\n")
    return path


def lab_command(root=ROOT, extra_options=()):
    """The jupyter lab command line, for this repository or a copy of it at `root` (and its settings)."""
    write_settings_overrides()
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
