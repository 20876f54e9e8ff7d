"""The suite runs every notebook: nothing in notebooks/ escapes nbval."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import run_notebooks  # noqa: E402


def test_every_notebook_is_collected_by_nbval():
    notebooks = sorted(path.name for path in (ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 3, notebooks
    # pytest.ini's testpaths and options, as `make test` runs them; the unit tests' modules are left
    # out of the collection only because importing them takes seconds and adds no notebook
    listing = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--ignore-glob=tests/*"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600).stdout
    collected = {line.split("::")[0].split("/")[-1] for line in listing.splitlines() if ".ipynb::" in line}
    assert collected == set(notebooks), f"not run by the suite: {set(notebooks) - collected}"


def test_committed_notebooks_show_none_of_the_data_set():
    previews = 0
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            if run_notebooks.DATA_PREVIEW in cell["metadata"].get("tags", []):
                previews += 1
                assert cell["outputs"] == [], f"{path.name} cell {index} shows the data set"
    assert previews >= 1  # notebook 3's grid of real faces is tagged


def test_tidy_strips_data_previews_and_keeps_other_outputs(tmp_path):
    notebook = nbformat.v4.new_notebook()
    shown = nbformat.v4.new_output("stream", name="stdout", text="a result\n")
    preview = nbformat.v4.new_output("display_data", data={"text/plain": "<Figure>"})
    notebook.cells = [nbformat.v4.new_code_cell("print('a result')", outputs=[shown]),
                      nbformat.v4.new_code_cell("show(real_images)", outputs=[preview],
                                                metadata={"tags": [run_notebooks.DATA_PREVIEW]})]
    path = tmp_path / "notebook.ipynb"
    nbformat.write(notebook, path)
    run_notebooks.tidy(path)
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].outputs[0]["text"] == "a result\n"
    assert cells[1].outputs == []


# An absolute path of the machine a notebook ran on: home folders, temporary folders, this team's
# /work, Windows drives. Not preceded by a character that would make it part of a URL or a word.
MACHINE_PATH = re.compile(r"(?<![\w.:/~-])(?:/(?:work|root|home|Users|tmp|private|var/folders|mnt|opt)/"
                          r"|[A-Za-z]:\\(?:Users|Windows|Program))")


def machine_paths(value, where):
    """Every string inside a notebook's JSON value that shows an absolute machine path, with where it is."""
    if isinstance(value, str):
        return [f"{where}: ...{value[max(0, match.start() - 40):match.end() + 60]!r}..."
                for match in MACHINE_PATH.finditer(value)]
    if isinstance(value, list):
        return [found for item in value for found in machine_paths(item, where)]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in machine_paths(item, f"{where}.{key}")]
    return []


@pytest.mark.parametrize("text, is_machine_path", [
    ("14,000 images from /work/shared/data/anime-faces/images in 9 s", True),
    ("saved to /tmp/pytest-of-root/grid.png", True),
    ("'/Users/ann/data'", True),
    ("(/home/ann/genmodels)", True),
    ("C:\\Users\\ann\\data", True),
    ("https://example.org/home/page", False),
    ("data/anime-faces/images", False),
    ("~/tmp/notes", False),
    ("outputs/generated_faces.png", False),
])
def test_machine_path_pattern(text, is_machine_path):
    assert bool(machine_paths({"text": [text]}, "output")) == is_machine_path


def test_committed_notebooks_show_no_machine_paths():
    found = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        found += machine_paths(notebook["metadata"], f"{path.name} metadata")
        for index, cell in enumerate(notebook["cells"]):
            found += machine_paths(cell.get("outputs", []), f"{path.name} cell {index} outputs")
    assert found == [], "committed notebooks show paths of the machine they ran on:\n" + "\n".join(found)


def test_committed_notebooks_show_no_stderr_but_ours():
    """No MXNet log line, no library warning in what GitHub shows: only our progress bars."""
    import repo_copy

    found = [f"{path.name} {line}" for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
             for line in repo_copy.foreign_stderr(json.loads(path.read_text())["cells"])]
    assert found == [], "stderr outputs a reader would see as red boxes (re-run the notebook):\n" + "\n".join(found)


def test_importing_helpers_and_computing_writes_nothing_to_stderr(tmp_path):
    """MXNet logs "MXNet start using engine: NaiveEngine" when its engine starts: helpers drops it."""
    code = "import helpers, mxnet as mx; print(mx.nd.ones((2, 2)).sum().asscalar())"
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "notebooks")}
    environment.pop("MXNET_ENGINE_TYPE", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "4.0\n", result.stderr
    assert result.stderr == ""
