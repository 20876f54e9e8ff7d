"""One worker of notebook 4's data-parallel job: the notebook's own `run_worker`, run by the launcher.

    python scripts/launch_distributed.py --workers 2 -- \\
        python scripts/distributed_worker.py --output outputs/distributed/demo --settings '{"EPOCHS": 2}'

The training code is not here: it lives in notebooks/04_many_devices_and_machines.ipynb, where
the reader sees it, and this script loads the notebook's definitions the way the tests do
(scripts/notebook_code.py), with `--settings` (JSON) overriding the notebook's parameters cell.
It then calls `run_worker`, which reads its rank from the kvstore, trains on its share of every
global batch and writes its final weights and a result file to `--output`.

`--crash-after-steps N --crash-rank R` makes the worker of rank R exit with code 3 after N
optimizer steps: the fault the launcher's fail-fast path and the resume from a checkpoint are
shown and tested with.
"""
import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "notebooks"), str(ROOT / "scripts")]

import helpers  # noqa: E402  (before mxnet: it sets the thread count and engine)
from mxnet import gluon  # noqa: E402
from notebook_code import notebook_namespace  # noqa: E402

NOTEBOOK = "04_many_devices_and_machines.ipynb"
CRASH_EXIT_CODE = 3


def crash_after(steps, rank):
    """Make Trainer.step end this process after `steps` steps when its kvstore rank is `rank`."""
    original_step, taken = gluon.Trainer.step, [0]

    def step(trainer, *args, **kwargs):
        original_step(trainer, *args, **kwargs)
        taken[0] += 1
        if taken[0] == steps and trainer._kvstore is not None and trainer._kvstore.rank == rank:
            print(f"rank {rank}: simulated crash after {steps} steps", flush=True)
            os._exit(CRASH_EXIT_CODE)  # no clean-up, no goodbye to the scheduler: as a real crash

    gluon.Trainer.step = step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="folder for weights and results")
    parser.add_argument("--settings", default="{}", help="JSON object of parameters-cell overrides")
    parser.add_argument("--kvstore", default="dist_sync", help="dist_sync (default), dist_async or none")
    parser.add_argument("--step-batch", choices=("global", "local"), default="global",
                        help="trainer.step(global batch), the right rule, or (local batch), the mistake")
    parser.add_argument("--checkpoints", type=Path, default=None, help="checkpoint folder (resume from it)")
    parser.add_argument("--crash-after-steps", type=int, default=None)
    parser.add_argument("--crash-rank", type=int, default=1)
    args = parser.parse_args()
    settings = json.loads(args.settings)
    if not isinstance(settings, dict):
        parser.error(f"--settings must be a JSON object such as '{{\"EPOCHS\": 2}}', got {args.settings!r}")
    if args.crash_after_steps is not None:
        crash_after(args.crash_after_steps, args.crash_rank)
    notebook = notebook_namespace(NOTEBOOK, also=("GluonRNNModel", "loss_function"), **settings)
    kvstore = None if args.kvstore == "none" else args.kvstore
    notebook["run_worker"](kvstore, args.output, args.step_batch, args.checkpoints)


if __name__ == "__main__":
    main()
