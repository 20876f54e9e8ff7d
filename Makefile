# Two commands are all a reader needs:  `make lab`  (set up, open the tutorial)  and  `make test`.
# Every target creates the virtual environment in .venv first when it is missing or stale.
# A Python 3.11 to make .venv with; empty: scripts/find_python.sh looks for one (python3.11, python3,
# pyenv, uv) and, failing that, says what to install. make lab PYTHON=/path/to/python3.11 names one.
PYTHON ?=
# uv, when it is on PATH, makes .venv and installs the requirements (several times faster than
# pip); make lab UV= uses venv and pip instead.
UV     ?= $(shell command -v uv 2>/dev/null)
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?=
# more jupyter lab options: make lab LAB_OPTIONS="--no-browser --ServerApp.port=8890"
LAB_OPTIONS ?=
# rounds of `make compare`: make compare ROUNDS=5 TORCH_PYTHON=...
ROUNDS ?= 3
# a Python that has torch, for `make compare` (torch is not a dependency of this project); make one with
#   python3.11 -m venv ../torch-venv && ../torch-venv/bin/pip install torch
TORCH_PYTHON ?=
# one model only: make compare FIGURE=lstm_train (or dcgan_train); empty: both
FIGURE ?=

export GENMODELS_DATA_DIR ?= $(DATA)

.PHONY: setup lab test run train figures bench compare clean

setup: $(VENV)/.installed

# A .venv made by another Python than 3.11 (an earlier attempt with python3 3.12, say) is made again.
$(VENV)/.installed: requirements.txt
	@if [ -d $(VENV) ] && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then \
	  echo "$(VENV) was not made by a working Python 3.11: making it again"; rm -rf $(VENV); fi
	@if [ ! -d $(VENV) ]; then \
	  python=$$(PYTHON="$(PYTHON)" sh scripts/find_python.sh) || exit 1; \
	  echo "Making $(VENV) with $$python"; \
	  if [ -n "$(UV)" ]; then "$(UV)" venv --quiet --seed --python "$$python" $(VENV); \
	  else "$$python" -m venv $(VENV); fi || exit 1; fi
	@echo "Installing requirements.txt into $(VENV)$(if $(UV), with uv,) (a few minutes the first time)"
	@if [ -n "$(UV)" ]; then "$(UV)" pip install --quiet --python $(BIN)/python -r requirements.txt; \
	else $(BIN)/python -m pip install --quiet --upgrade pip && $(BIN)/python -m pip install --quiet -r requirements.txt; fi
	@# `import helpers` works in any working directory (papermill without --cwd, a kernel started elsewhere)
	@echo "$(CURDIR)/notebooks" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/genmodels-notebooks.pth"
	@touch $@

lab: setup  ## set up, then start JupyterLab serving the repository (so ../images/ links load), open on notebooks/
	$(BIN)/python scripts/jupyter_lab.py $(LAB_OPTIONS)

test: setup  ## set up, then the unit tests, every notebook (smoke mode) under nbval, a fresh clone, a browser
	$(BIN)/python -m pytest

run: setup  ## execute every notebook headless in its default mode; results go to outputs/
	$(BIN)/python scripts/run_notebooks.py

# a shipped run starts from scratch; make train FRESH=0 ... resumes an interrupted one from checkpoints/
FRESH ?= 1
# a run whose metric is worse than the shipped weights' is refused; make train ALLOW_WORSE=1 ... publishes it anyway
ALLOW_WORSE ?= 0
train: setup  ## full training run of one notebook, outputs saved into it: make train NOTEBOOK=notebooks/02_....ipynb
	$(BIN)/python scripts/run_notebooks.py --train $(if $(filter 1,$(FRESH)),--fresh) $(if $(filter 1,$(ALLOW_WORSE)),--allow-worse) $(NOTEBOOK)

figures: setup  ## redraw the diagrams in images/
	$(BIN)/python images/make_figures.py

bench: setup  ## training and generation throughput of the shipped configurations, one line per figure
	$(BIN)/python scripts/benchmark.py

compare: setup  ## MXNet vs PyTorch (scripts/pytorch_reference.py) side by side: make compare TORCH_PYTHON=../torch-venv/bin/python
	$(if $(TORCH_PYTHON),,$(error set TORCH_PYTHON to a Python that has torch: python3.11 -m venv ../torch-venv && ../torch-venv/bin/pip install torch, then make compare TORCH_PYTHON=../torch-venv/bin/python))
	$(BIN)/python scripts/benchmark.py $(FIGURE) --pytorch $(TORCH_PYTHON) --rounds $(ROUNDS)

clean:
	rm -rf outputs checkpoints
