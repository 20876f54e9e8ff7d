"""One worker of notebook 4's data-parallel job: the notebook's own `run_worker`, run by the launcher.

    python scripts/launch_distributed.py --workers 2 -- \\
        python scripts/distributed_worker.py --output outputs/distributed/demo --settings '{"EPOCHS": 2}'

The training code is not here: it lives in notebooks/04_many_devices_and_machines.ipynb, where
the reader sees it, and this script loads the notebook's definitions the way the tests do
(scripts/notebook_code.py), with `--settings` (JSON) overriding the notebook's parameters cell.
It then calls `run_worker`, which reads its rank from the kvstore, trains on its share of every
global batch and writes its final weights and a result file to `--output`.

Fail fast: an exception that escapes ends this process at once, with its traceback and exit
code 1. Left to Python's usual exit, the kvstore's shutdown would wait for the other workers,
which wait for this one: the job would hang until the launcher's timeout.

Faults the tests and the notebook inject (each acts on one rank only):
`--fail-after-steps N --fail-rank R` raises an exception in rank R after N optimizer steps;
`--reseed-rank R` gives rank R's model other initial weights (another seed);
`--hide-checkpoints-from-rank R` makes the checkpoint folder look empty to rank R.
"""
import argparse
import json
import linecache
import os
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "notebooks"), str(ROOT / "scripts")]

import helpers  # noqa: E402  (before mxnet: it sets the thread count and engine)

import storage
import mxnet as mx  # noqa: E402
from mxnet import gluon  # noqa: E402
from notebook_code import notebook_namespace  # noqa: E402

NOTEBOOK = "04_many_devices_and_machines.ipynb"
FAILURE_EXIT_CODE = 1


def fail_fast(kind, error, trace):
    """sys.excepthook: print the error and end the process now, skipping the kvstore's shutdown."""
    if not isinstance(error, helpers.OneLineError):  # a one-line error says all there is to say
        print("Traceback (most recent call last):", file=sys.stderr)
        for frame, line in traceback.walk_tb(trace):
            code = frame.f_code
            if code.co_filename.endswith(".ipynb"):  # line numbers count from the cell: no source to show
                print(f'  File "{code.co_filename}", in {code.co_name} (a cell of the notebook)', file=sys.stderr)
            else:
                print(f'  File "{code.co_filename}", line {line}, in {code.co_name}\n'
                      f'    {linecache.getline(code.co_filename, line).strip()}', file=sys.stderr)
    print("".join(traceback.format_exception_only(kind, error)).rstrip(), file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(FAILURE_EXIT_CODE)


def this_rank():
    """The rank of the kvstore this process created (None before it exists): mx.kv.create, watched."""
    return _ranks[0] if _ranks else None


_ranks, _create = [], mx.kv.create


def _watched_create(*args, **kwargs):
    kvstore = _create(*args, **kwargs)
    _ranks.append(kvstore.rank)  # the rank only: holding the kvstore past run_worker breaks its shutdown
    return kvstore


mx.kv.create = _watched_create


def fail_after(steps, rank):
    """Make Trainer.step raise after `steps` steps in the worker of rank `rank`."""
    original_step, taken = gluon.Trainer.step, [0]

    def step(trainer, *args, **kwargs):
        original_step(trainer, *args, **kwargs)
        taken[0] += 1
        if taken[0] == steps and this_rank() == rank:
            raise RuntimeError(f"rank {rank}: simulated failure after {steps} steps")

    gluon.Trainer.step = step


def reseed(notebook, rank):
    """Give rank `rank`'s new model the initial weights of another seed."""
    original = notebook["new_model"]

    def new_model(*args, **kwargs):
        model = original(*args, **kwargs)
        if this_rank() == rank:
            helpers.seed_everything(notebook["SEED"] + 1)
            model.initialize(mx.init.Xavier(), force_reinit=True)
        return model

    notebook["new_model"] = new_model


def hide_checkpoints(rank):
    """Make every checkpoint folder look empty to the worker of rank `rank`."""
    original = storage.latest_epoch
    storage.latest_epoch = lambda folder: None if this_rank() == rank else original(folder)


def main():
    sys.excepthook = fail_fast
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="folder for weights and results")
    parser.add_argument("--settings", default="{}", help="JSON object of parameters-cell overrides")
    parser.add_argument("--kvstore", default="dist_sync", help="dist_sync (default), dist_async or none")
    parser.add_argument("--step-batch", choices=("global", "local"), default="global",
                        help="trainer.step(global batch), the right rule, or (local batch), the mistake")
    parser.add_argument("--checkpoints", type=Path, default=None, help="checkpoint folder (resume from it)")
    parser.add_argument("--fail-after-steps", type=int, default=None)
    parser.add_argument("--fail-rank", type=int, default=1)
    parser.add_argument("--reseed-rank", type=int, default=None)
    parser.add_argument("--hide-checkpoints-from-rank", type=int, default=None)
    args = parser.parse_args()
    settings = json.loads(args.settings)
    if not isinstance(settings, dict):
        parser.error(f"--settings must be a JSON object such as '{{\"EPOCHS\": 2}}', got {args.settings!r}")
    if args.fail_after_steps is not None:
        fail_after(args.fail_after_steps, args.fail_rank)
    if args.hide_checkpoints_from_rank is not None:
        hide_checkpoints(args.hide_checkpoints_from_rank)
    notebook = notebook_namespace(NOTEBOOK, also=("GluonRNNModel", "loss_function"), **settings)
    if args.reseed_rank is not None:
        reseed(notebook, args.reseed_rank)
    kvstore = None if args.kvstore == "none" else args.kvstore
    notebook["run_worker"](kvstore, args.output, args.step_batch, args.checkpoints)


if __name__ == "__main__":
    main()
