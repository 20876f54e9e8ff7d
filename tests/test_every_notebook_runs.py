"""The suite runs every notebook: nothing in notebooks/ escapes nbval."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_notebook_is_collected_by_nbval():
    notebooks = sorted(path.name for path in (ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 3, notebooks
    listing = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120).stdout
    collected = {line.split("::")[0].split("/")[-1] for line in listing.splitlines() if ".ipynb::" in line}
    assert collected == set(notebooks), f"not run by the suite: {set(notebooks) - collected}"
