"""Test-wide set-up: the notebooks and the helper module run in smoke mode, importable as-is."""
import os
import sys
from pathlib import Path

# Before any kernel starts: nbval's kernels inherit this environment.
os.environ["GENMODELS_SMOKE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path[:0] = [str(Path(__file__).parent / "notebooks"), str(Path(__file__).parent / "scripts")]
