"""The suite runs every notebook: nothing in notebooks/ escapes nbval."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import run_notebooks  # noqa: E402


def test_every_notebook_is_collected_by_nbval():
    notebooks = sorted(path.name for path in (ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 3, notebooks
    listing = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120).stdout
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
