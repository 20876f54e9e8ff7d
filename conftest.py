"""Test-wide set-up: the notebooks and the helper module run in smoke mode, importable as-is,
and write their checkpoints and outputs to a temporary folder, never to the repository's.

Two rules for `make test` (pytest with pytest.ini's testpaths):

- The committed notebooks are what nbval runs. A notebook whose working copy differs from the
  last commit (JupyterLab's autosave, an edit) is replaced, for this run only, by the committed
  one in a copy of notebooks/ under outputs/ (git-ignored); the header says so in one line. A notebook named on
  the command line (`pytest notebooks/NAME.ipynb`) is run as it is in the working tree.
- Tests that need the real data sets (NEEDS_DATA, or `@pytest.mark.needs_data(TEXT)`) are
  skipped with one line saying how to get them when the data is not on disk; when CI=true and
  GENMODELS_DATA_DIR is set (CI keeps the data beside the clone), a missing data set fails them.
"""
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

# Before any kernel starts: nbval's kernels inherit this environment.
os.environ["GENMODELS_SMOKE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
# Set unconditionally: a test run must not resume from, or overwrite, a reader's own checkpoints.
_SESSION_FOLDER = Path(tempfile.mkdtemp(prefix="genmodels-tests-"))
os.environ["GENMODELS_CHECKPOINT_DIR"] = str(_SESSION_FOLDER / "checkpoints")
os.environ["GENMODELS_OUTPUT_DIR"] = str(_SESSION_FOLDER / "outputs")
atexit.register(shutil.rmtree, _SESSION_FOLDER, ignore_errors=True)
sys.path[:0] = [str(ROOT / folder) for folder in ("notebooks", "scripts", "experiments", "tests")]
import repo_copy  # noqa: E402  (tests/repo_copy.py: what a clone holds)

# ---------------------------------------------------------------- tests that need the real data

TEXT = "nietzsche.txt"
FACES = "anime-faces"
# Where each data set may be, below a data folder (as storage.nietzsche_path and faces_folder look).
DATA_FILES = {TEXT: ["nietzsche.txt"], FACES: ["anime-faces/images", "anime-faces/faces"]}
HOW_TO_GET = {TEXT: "put nietzsche.txt in data/ or set GENMODELS_DATA_DIR to its folder",
              FACES: "put the faces in data/anime-faces/ or set GENMODELS_DATA_DIR to a folder holding "
                     "anime-faces/images"}
# (file, data set, the tests or fixtures in it that read the data; None: all of the file's tests).
# A notebook's every cell under nbval needs its data: its smoke run trains on it, and the cells
# marked NBVAL_CHECK_OUTPUT print what was read. Tests can also carry @pytest.mark.needs_data(TEXT).
NEEDS_DATA = [
    ("01_generative_vs_discriminative.ipynb", TEXT, None),
    ("02_char_language_model.ipynb", TEXT, None),
    ("03_dcgan_anime_faces.ipynb", FACES, None),
    ("04_many_devices_and_machines.ipynb", TEXT, None),
    ("test_distributed.py", TEXT, {"sync_job", "single_process", "notebook",
                                   "test_a_worker_that_dies_stops_the_job_well_within_the_timeout",
                                   "test_a_worker_that_raises_ends_at_once_with_its_traceback",
                                   "test_resuming_with_adam_is_refused_naming_the_optimizer"}),
    ("test_distributed_netns.py", TEXT, {"single_process", "test_without_port_the_same_firewall_stops_the_job"}),
    ("test_char_language_model.py", TEXT, {"test_shipped_lstm_reaches_the_target_on_the_validation_split"}),
    ("test_helpers.py", TEXT, {"test_the_real_text_has_600901_characters_and_86_vocabulary_entries"}),
]


def data_folders(environ=os.environ):
    """Where storage looks for data: $GENMODELS_DATA_DIR (if set), then the repository's data/."""
    folders = [Path(environ["GENMODELS_DATA_DIR"]).expanduser()] if environ.get("GENMODELS_DATA_DIR") else []
    return folders + [ROOT / "data"]


def data_verdict(data, environ=os.environ):
    """None when `data` is on disk; else ("skip" or "fail", the one line that says so)."""
    if any((folder / name).exists() for folder in data_folders(environ) for name in DATA_FILES[data]):
        return None
    if environ.get("CI") == "true" and environ.get("GENMODELS_DATA_DIR"):
        return "fail", (f"CI has the data beside the clone, but {data} is not in "
                        f"GENMODELS_DATA_DIR={environ['GENMODELS_DATA_DIR']} or data/")
    return "skip", f"needs {data}: {HOW_TO_GET[data]} (data/README.md says where to get it)"


def needed_data(item):
    """The data sets a collected test needs, from its marker and from NEEDS_DATA."""
    needed = {marker.args[0] for marker in item.iter_markers("needs_data")}
    name = getattr(item, "originalname", None) or item.name
    for file_name, data, names in NEEDS_DATA:
        if item.path.name == file_name and (names is None or name in names
                                            or names & set(getattr(item, "fixturenames", ()))):
            needed.add(data)
    return sorted(needed)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # first, so that `-m needs_data` selects the tests NEEDS_DATA names too
    for item in items:
        for data in needed_data(item):
            item.add_marker(pytest.mark.needs_data(data))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # before any fixture (a kernel, a job) starts
    for marker in item.iter_markers("needs_data"):
        verdict = data_verdict(marker.args[0])
        if verdict and verdict[0] == "fail":
            pytest.fail(verdict[1], pytrace=False)
        if verdict:
            pytest.skip(verdict[1])


# ---------------------------------------------------------------- the committed notebooks

def committed_notebooks_folder(changed, target):
    """`target`/notebooks: the repository's notebooks/ linked file by file, the changed notebooks
    written as committed; every other top-level entry of the repository linked beside it, so that
    ../images, ../weights and helpers resolve as in the repository."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name not in ("notebooks", "outputs", ".git"):
            (target / entry.name).symlink_to(entry)
    for entry in (ROOT / "notebooks").iterdir():
        copy = target / "notebooks" / entry.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        relative = f"notebooks/{entry.name}"
        if relative in changed:
            copy.write_bytes(changed[relative])
        else:
            copy.symlink_to(entry)
    return target / "notebooks"


_REPLACED = []


def pytest_sessionstart(session):
    config = session.config
    if config.args_source != pytest.Config.ArgsSource.TESTPATHS:
        return  # paths named on the command line run as they are
    changed = repo_copy.changed_notebooks()
    if not changed:
        return
    # inside the repository (outputs/ is git-ignored), so that the tests' names keep the notebook's
    (ROOT / "outputs").mkdir(exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="committed-notebooks-", dir=ROOT / "outputs"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    folder = committed_notebooks_folder(changed, target)
    _REPLACED.extend(sorted(changed))
    config.args[:] = [argument for argument in config.args if Path(argument).resolve() != ROOT / "notebooks"] \
        + [str(folder / path.name if f"notebooks/{path.name}" in changed else path.relative_to(ROOT))
           for path in sorted((ROOT / "notebooks").glob("*.ipynb"))]


@pytest.fixture
def fake_weights_repo(tmp_path, monkeypatch):
    """A repository root under tmp_path with an empty weights/, checkpoints beside it: for the tests
    of storage.py and of make train's publishing, which must never touch the real weights/."""
    import helpers
    import storage

    repo = tmp_path / "repo"
    (repo / "weights").mkdir(parents=True)
    monkeypatch.setattr(helpers, "REPO_ROOT", repo)
    monkeypatch.setattr(storage, "WEIGHTS_DIR", repo / "weights")
    monkeypatch.setattr(storage, "MANIFEST", repo / "weights" / "manifest.json")
    monkeypatch.setenv(storage.CHECKPOINT_ENV_VAR, str(tmp_path / "checkpoints"))
    monkeypatch.delenv(storage.EXPERIMENT_LOG_ENV_VAR, raising=False)
    return repo


def pytest_report_header(config):
    if _REPLACED:
        names = ", ".join(Path(name).name for name in _REPLACED)
        return (f"testing the committed notebooks: {names} differ in the working tree "
                f"(`git checkout notebooks/NAME` restores one)")
    return None
