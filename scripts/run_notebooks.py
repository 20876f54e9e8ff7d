"""Execute the tutorial's notebooks headless with papermill.

    python scripts/run_notebooks.py                    # every notebook, default mode (load weights, sample)
    python scripts/run_notebooks.py --in-place NB...   # default mode, outputs saved into notebooks/
    python scripts/run_notebooks.py --train NB.ipynb   # full training run, then publish into weights/
    python scripts/run_notebooks.py --finish-publish   # complete a publish that was interrupted

Default mode writes the executed notebooks to outputs/ (git-ignored) and leaves notebooks/
untouched; the samples and image grids the notebooks save land in outputs/ as well.
--in-place runs the default mode and saves each executed notebook into notebooks/, which is
how committed notebooks are re-executed without training.
--train runs a notebook with TRAIN = True; the notebook saves its result as an experiment
under checkpoints/ (storage.save_experiment), and this script then publishes it: the
experiment's weights files into weights/, their entries into weights/manifest.json, the
executed notebook into notebooks/ and the figures it drew of its own training (TRAINING_FIGURES)
into images/, all as one step. It refuses (exit status 1, nothing
changed) when a metric is not a finite number, is no better (lower) than the untrained
model's, or is worse than the metric of the weights it would replace (--allow-worse, or
make train ALLOW_WORSE=1, replaces them all the same). This is the only way weights/ changes.

Every executed notebook is tidied: papermill's injected-parameters cell is removed, so that a
reader who re-runs the committed notebook gets the fast default (TRAIN = False) again,
progress-bar redraws are collapsed to the final state that a terminal would show, and cells
tagged `data-preview` (pictures of the data set, which is not ours to redistribute) lose their
outputs. Notebooks always run with notebooks/ as their working directory, wherever this
script is started from.
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
# Executed notebooks, and the samples and grids they save: $GENMODELS_OUTPUT_DIR, else outputs/.
OUTPUTS = Path(os.environ.get("GENMODELS_OUTPUT_DIR") or ROOT / "outputs").resolve()
# Figures a training run draws of its own model (not of the data) that make train ships in images/
TRAINING_FIGURES = {"03_dcgan_anime_faces.ipynb": ["dcgan/dcgan_epoch_grids.png"]}
DATA_PREVIEW = "data-preview"  # tag of cells that show the data itself: never committed with outputs

sys.path.insert(0, str(NOTEBOOKS))
import helpers  # noqa: E402  (from notebooks/, as the notebooks import it)
import storage


class PublishRefused(Exception):
    """An experiment that must not replace the shipped weights; the message says why and what to do."""


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
    # papermill records where it read and wrote the notebook: this machine's paths, not the reader's
    for key in ("input_path", "output_path"):
        notebook.metadata.get("papermill", {}).pop(key, None)
    nbformat.write(notebook, path)


# ---------------------------------------------------------------- publishing an experiment into weights/

def journal_path():
    return storage.WEIGHTS_DIR / storage.PUBLISH_JOURNAL


def experiment_problems(folder, entries, shipped=None, allow_worse=False):
    """Why the experiment in `folder` must not be published: a list of sentences, empty if none.

    `shipped`: the manifest's entries, whose metrics a new run must not be worse than (unless
    `allow_worse`); an entry with no metric, or one measured another way, is not compared.
    """
    problems = []
    for file_name, entry in sorted(entries.items()):
        old = (shipped or {}).get(file_name, {})
        metric, untrained = entry.get("metric"), entry.get("untrained_metric")
        label = f"{file_name} in {helpers.shown_path(folder)}"
        numbers = [value for value in (metric, untrained) if _is_number(value)]
        if len(numbers) < 2:
            problems.append(f"{label}: its entry needs numbers \"metric\" and \"untrained_metric\" "
                            f"(lower is better), got metric = {metric!r}, untrained_metric = {untrained!r}; "
                            "the notebook's save_experiment call must record both")
        elif not math.isfinite(metric):
            problems.append(f"{label}: metric = {metric} is not a finite number, so the run diverged; "
                            "lower LEARNING_RATE (or CLIP) in the parameters cell and run make train again")
        elif not math.isfinite(untrained):
            problems.append(f"{label}: untrained_metric = {untrained} is not a finite number; the "
                            "notebook must measure the untrained model before training")
        elif not metric < untrained:
            problems.append(f"{label}: metric = {metric:.4f} is no better than the untrained model's "
                            f"{untrained:.4f}, so training did not help; check LEARNING_RATE (and CLIP), "
                            "EPOCHS and BATCH_SIZE in the parameters cell and run make train again")
        elif (not allow_worse and _is_number(old.get("metric")) and old.get("metric_name") == entry.get("metric_name")
              and metric > old["metric"]):
            problems.append(f"{label}: metric = {metric:.4f} is worse than the {old['metric']:.4f} of the "
                            f"weights/{file_name} it would replace; keep those, or replace them all the same "
                            "with make train ALLOW_WORSE=1")
        path = folder / file_name
        if not path.is_file() or storage.sha256_of(path) != entry.get("sha256"):
            problems.append(f"{label}: the file is missing or does not match its checksum; run "
                            "make train again")
    return problems


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _stage_copy(source, target):
    """Copy `source` to a uniquely named file beside `target` (the same folder, so the later rename
    is atomic), flushed to disk; returns the staged path and its SHA-256."""
    descriptor, staged = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(descriptor)
    shutil.copyfile(source, staged)
    storage.flush_to_disk(staged)
    return Path(staged), storage.sha256_of(staged)


def publish(experiment_folders, extra_files=(), command=None, allow_worse=False):
    """Copy experiments into weights/ and the manifest as one step; returns the published names.

    `extra_files`: [(source, target)] installed in the same step (the executed notebook).
    `allow_worse`: publish a run whose metric is worse than the shipped weights'.
    Nothing is changed when any experiment is refused (PublishRefused). The step: every new
    file is staged beside the file it replaces, with the new manifest; a journal naming them
    is written (from here on the publish completes, even after a crash: finish_publish); the
    staged files are renamed over the old ones, the manifest last, and the journal removed.
    verified_weights refuses to load while a journal exists.
    """
    weights_dir = storage.WEIGHTS_DIR
    weights_dir.mkdir(parents=True, exist_ok=True)
    with storage.exclusive_run(weights_dir):
        if journal_path().exists():
            finish_publish()
        manifest = storage.read_manifest()
        updates, sources, problems = {}, {}, []
        for folder in experiment_folders:
            folder = Path(folder)
            entries = storage.read_experiment(folder)
            if not entries:
                problems.append(f"{helpers.shown_path(folder)} holds no experiment ({storage.EXPERIMENT_RECORD} "
                                "is missing or empty)")
                continue
            problems += experiment_problems(folder, entries, manifest, allow_worse)
            for file_name, entry in entries.items():
                if file_name in updates:
                    problems.append(f"{file_name} comes from two experiments ({sources[file_name].parent} "
                                    f"and {folder}); publish one of them")
                updates[file_name] = dict(entry, **({"command": command} if command else {}))
                sources[file_name] = folder / file_name
        if problems:
            raise PublishRefused("refusing to publish into weights/ (nothing was changed): "
                                 + " | ".join(problems))
        staged, moves = [], []
        try:
            for file_name, source in sorted(sources.items()):
                path, checksum = _stage_copy(source, weights_dir / file_name)
                staged.append(path)
                if checksum != updates[file_name]["sha256"]:
                    raise PublishRefused(f"{file_name} changed while it was copied; run make train again")
                manifest[file_name] = updates[file_name]
                moves.append([str(path), str(weights_dir / file_name)])
            for source, target in extra_files:
                path, _ = _stage_copy(Path(source), Path(target))
                staged.append(path)
                moves.append([str(path), str(Path(target))])
            text = json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True, allow_nan=False) + "\n"
            manifest_stage = Path(tempfile.mkstemp(prefix=".manifest.json.", suffix=".partial", dir=weights_dir)[1])
            staged.append(manifest_stage)
            manifest_stage.write_text(text, encoding="utf-8")
            storage.flush_to_disk(manifest_stage)
            moves.append([str(manifest_stage), str(storage.MANIFEST)])  # last: it makes the step visible
            storage.write_json(journal_path(), {"moves": moves})  # the point of no return
        except BaseException:
            for path in staged:
                Path(path).unlink(missing_ok=True)
            raise
        finish_publish()
    return sorted(sources)


def finish_publish():
    """Complete the publish a journal describes (after a crash); True if there was one.

    Each staged file is renamed onto its target; a move already done (staged file gone,
    target present) is skipped. The journal is removed last.
    """
    journal = journal_path()
    if not journal.exists():
        return False
    try:
        moves = json.loads(journal.read_text(encoding="utf-8"))["moves"]
    except (ValueError, KeyError):
        raise PublishRefused(f"{journal} is damaged; restore weights/ with git checkout weights/ and "
                             f"delete {journal.name}") from None
    for staged, target in moves:
        if Path(staged).exists():
            os.replace(staged, target)
        elif not Path(target).exists():
            raise PublishRefused(f"cannot finish the publish: {staged} and {target} are both missing; "
                                 f"restore weights/ with git checkout weights/ and delete {journal}")
    storage.flush_to_disk(storage.WEIGHTS_DIR)
    journal.unlink()
    return True


# ---------------------------------------------------------------- running notebooks

def execute(notebook, target, parameters):
    """Run `notebook` with papermill into `target`, working directory notebooks/, then tidy it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(notebook), str(target), cwd=str(NOTEBOOKS),
                               parameters=parameters, progress_bar=False)
    tidy(target)


def experiments_logged(log):
    """The experiment folders save_experiment reported during a run, in order, once each."""
    lines = Path(log).read_text(encoding="utf-8").splitlines() if Path(log).exists() else []
    return [Path(line) for line in dict.fromkeys(lines) if line and Path(line).is_dir()]


def install(source, target):
    """Copy `source` over `target` in one rename."""
    storage.atomic_write(target, lambda temporary: shutil.copyfile(source, temporary))


def train(notebook, fresh_start=False, allow_worse=False):
    """--train: run with TRAIN = True, then publish what the run saved."""
    executed = OUTPUTS / notebook.name
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "experiments.txt"
        os.environ[storage.EXPERIMENT_LOG_ENV_VAR] = str(log)
        try:
            execute(notebook, executed, {"TRAIN": True, **({"FRESH_START": True} if fresh_start else {})})
        finally:
            del os.environ[storage.EXPERIMENT_LOG_ENV_VAR]
        folders = experiments_logged(log)
    if not folders:
        raise PublishRefused(f"{notebook.name} ran with TRAIN = True but saved no experiment "
                             "(storage.save_experiment was not called); nothing was published")
    extra_files = [(executed, notebook)]
    for relative in TRAINING_FIGURES.get(notebook.name, []):
        figure = OUTPUTS / relative
        if not figure.is_file():
            raise PublishRefused(f"{notebook.name} ran with TRAIN = True but drew no {helpers.shown_path(figure)}; "
                                 "nothing was published")
        extra_files.append((figure, ROOT / "images" / figure.name))
    command = f"make train NOTEBOOK=notebooks/{notebook.name}"
    names = publish(folders, extra_files=extra_files, command=command, allow_worse=allow_worse)
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--train", action="store_true",
                      help="run with TRAIN = True, then publish the experiment into weights/")
    mode.add_argument("--in-place", action="store_true",
                      help="run in the default mode and save the executed notebooks into notebooks/")
    mode.add_argument("--finish-publish", action="store_true",
                      help="complete a publish into weights/ that was interrupted, then stop")
    parser.add_argument("--fresh", action="store_true",
                        help="with --train: FRESH_START = True (discard checkpoints, do not resume)")
    parser.add_argument("--allow-worse", action="store_true",
                        help="with --train: publish even when the run's metric is worse than the shipped weights'")
    args = parser.parse_args(argv)
    try:
        with storage.exclusive_run(storage.WEIGHTS_DIR):  # as publish() holds it: never two at once
            finished = finish_publish()
        if finished:
            print(f"finished an interrupted publish into {helpers.shown_path(storage.WEIGHTS_DIR)}")
        if args.finish_publish:
            return 0
        notebooks = args.notebooks or sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
        if not notebooks:
            sys.exit(f"no notebooks found in {NOTEBOOKS}")
        OUTPUTS.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("GENMODELS_OUTPUT_DIR", str(OUTPUTS))
        for notebook in notebooks:
            notebook = notebook.resolve()
            started = time.perf_counter()
            if args.train:
                names = train(notebook, fresh_start=args.fresh, allow_worse=args.allow_worse)
                where = f"{notebook} and weights/ ({', '.join(names)})"
            else:
                executed = OUTPUTS / notebook.name
                execute(notebook, executed, {})
                if args.in_place:
                    install(executed, notebook)
                where = notebook if args.in_place else executed
            print(f"{notebook.name}: executed in {time.perf_counter() - started:.0f} s -> {where}")
    except (PublishRefused, helpers.OneLineError) as error:
        print(f"run_notebooks: {error}", file=sys.stderr)
        return 1
    except papermill.PapermillExecutionError as error:
        print(f"run_notebooks: cell {error.exec_count} failed with {error.ename}: {error.evalue}; "
              f"the executed notebook is in {OUTPUTS}; nothing was published", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
