# Two commands are all a reader needs:  `make lab`  (set up, open the tutorial)  and  `make test`.
# Every target creates the virtual environment in .venv first when it is missing or stale.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?=
# rounds of `make compare`: make compare ROUNDS=5 TORCH_PYTHON=...
ROUNDS ?= 3

export GENMODELS_DATA_DIR ?= $(DATA)

.PHONY: setup lab test run train figures bench compare clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

lab: setup  ## set up, then start JupyterLab on notebooks/
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

test: setup  ## set up, then run the unit tests and every notebook (smoke mode) under nbval
	$(BIN)/python -m pytest

run: setup  ## execute every notebook headless in its default mode; results go to outputs/
	$(BIN)/python scripts/run_notebooks.py

train: setup  ## full training run of one notebook, outputs saved into it: make train NOTEBOOK=notebooks/02_....ipynb
	$(BIN)/python scripts/run_notebooks.py --train $(NOTEBOOK)

figures: setup  ## redraw the diagrams in images/
	$(BIN)/python images/make_figures.py

bench: setup  ## training and generation throughput of the shipped configurations, one line per figure
	$(BIN)/python scripts/benchmark.py

compare: setup  ## MXNet vs PyTorch side by side: make compare TORCH_PYTHON=/path/to/torch-venv/bin/python
	$(if $(TORCH_PYTHON),,$(error set TORCH_PYTHON to a Python that has torch: make compare TORCH_PYTHON=/path/to/bin/python))
	$(BIN)/python scripts/benchmark.py --pytorch $(TORCH_PYTHON) --rounds $(ROUNDS)

clean:
	rm -rf outputs checkpoints
