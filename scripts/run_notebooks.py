"""Execute the tutorial's notebooks headless with papermill.

    python scripts/run_notebooks.py                  # every notebook, default mode (load weights, sample)
    python scripts/run_notebooks.py --train NB.ipynb # full training run, written back into notebooks/

Default mode writes the executed notebooks to outputs/ (git-ignored) and leaves notebooks/
untouched; the samples and image grids the notebooks save land in outputs/ as well.
--train runs a notebook with TRAIN = True and saves it in place, which is how the committed
notebooks got their outputs. Papermill's injected-parameters cell is then removed, so that a
reader who re-runs the committed notebook gets the fast default (TRAIN = False) again,
progress-bar redraws are collapsed to the final state that a terminal would show, and cells
tagged `data-preview` (pictures of the data set, which is not ours to redistribute) lose their
outputs.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
import papermill

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
OUTPUTS = ROOT / "outputs"
DATA_PREVIEW = "data-preview"  # tag of cells that show the data itself: never committed with outputs


def last_redraw(text):
    """Keep, for each line, only what follows its last carriage return (as a terminal shows it)."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def tidy(path):
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [cell for cell in notebook.cells
                      if "injected-parameters" not in cell.metadata.get("tags", [])]
    for cell in notebook.cells:
        merged = []
        for output in cell.get("outputs", []):  # a progress bar arrives as many small stream outputs
            if (output.get("output_type") == "stream" and merged
                    and merged[-1].get("output_type") == "stream" and merged[-1]["name"] == output["name"]):
                merged[-1]["text"] += output["text"]
            else:
                merged.append(output)
        for output in merged:
            if output.get("output_type") == "stream":
                output["text"] = last_redraw(output["text"])
        if cell.cell_type == "code":
            cell.outputs = [] if DATA_PREVIEW in cell.metadata.get("tags", []) else merged
    nbformat.write(notebook, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--train", action="store_true", help="run with TRAIN = True, in place")
    args = parser.parse_args()
    notebooks = args.notebooks or sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    if not notebooks:
        sys.exit(f"no notebooks found in {NOTEBOOKS}")
    OUTPUTS.mkdir(exist_ok=True)
    os.environ.setdefault("GENMODELS_OUTPUT_DIR", str(OUTPUTS))
    for notebook in notebooks:
        notebook = notebook.resolve()
        target = notebook if args.train else OUTPUTS / notebook.name
        started = time.perf_counter()
        papermill.execute_notebook(str(notebook), str(target), cwd=str(notebook.parent),
                                   parameters={"TRAIN": True} if args.train else {},
                                   progress_bar=False)
        tidy(target)
        print(f"{notebook.name}: executed in {time.perf_counter() - started:.0f} s -> {target}")
    print(f"Executed notebooks{'' if args.train else ', generated text and image grids'} are in "
          f"{NOTEBOOKS if args.train else OUTPUTS}")


if __name__ == "__main__":
    main()
