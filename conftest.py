"""Test-wide set-up: the notebooks and the helper module run in smoke mode, importable as-is,
and write their checkpoints and outputs to a temporary folder, never to the repository's."""
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Before any kernel starts: nbval's kernels inherit this environment.
os.environ["GENMODELS_SMOKE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
# Set unconditionally: a test run must not resume from, or overwrite, a reader's own checkpoints.
_SESSION_FOLDER = Path(tempfile.mkdtemp(prefix="genmodels-tests-"))
os.environ["GENMODELS_CHECKPOINT_DIR"] = str(_SESSION_FOLDER / "checkpoints")
os.environ["GENMODELS_OUTPUT_DIR"] = str(_SESSION_FOLDER / "outputs")
atexit.register(shutil.rmtree, _SESSION_FOLDER, ignore_errors=True)
sys.path[:0] = [str(Path(__file__).parent / folder) for folder in ("notebooks", "scripts", "experiments")]
