"""`hacnn-tf fit CONFIG [--set section.field=value ...]`: train HA-CNN with model.fit.

CONFIG is a packaged config name (`hacnn-tf configs` lists them) or a YAML/JSON file.
Example: hacnn-tf fit market1501_paper_softmax --set data.root=/data/reid

Rerunning the same command resumes an interrupted run and does nothing for a finished one; a larger train.epochs
continues a finished run. --overwrite moves the run in output.dir aside (to <dir>.old-<time>) and starts over.

Several GPUs: --set distribute.strategy=mirrored. Several machines: --set distribute.strategy=multi_worker on every
worker, each with its own TF_CONFIG (see hacnn_tf/distribute.py).
"""

from __future__ import annotations

import argparse
import pathlib

from hacnn_tf.cli.options import add_overrides, config_from_args
from hacnn_tf.cli.outputs import print_written
from hacnn_tf.training_log import LOG_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="packaged config name or YAML/JSON file (defaults only if omitted)")
    add_overrides(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="move the run already in output.dir aside (never deleted) and train from scratch",
    )


def run(args: argparse.Namespace) -> None:
    import logging
    import time

    from hacnn_tf import distribute
    from hacnn_tf.callbacks import BackupError, TrainingProgress, checkpoint_info
    from hacnn_tf.errors import UserError
    from hacnn_tf.trainer import fit

    started = time.perf_counter()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = config_from_args(args.config, args.overrides)
    distribute.initialize(config)  # first: MultiWorkerMirroredStrategy must exist before any other TF op runs
    try:
        fit(config, verbose=0, extra_callbacks=[TrainingProgress()], overwrite=args.overwrite)
    except (BackupError, FileExistsError, BlockingIOError) as error:  # the run folder refused before training
        raise UserError(str(error)) from error
    run_dir = pathlib.Path(config.output.dir)
    best = checkpoint_info(run_dir / "best.keras") or {}
    best_note = f"epoch {best['epoch']}, val_mAP {best['value']:.4f}" if best.get("value") is not None else ""
    last = checkpoint_info(run_dir / "last.keras") or {}
    print_written(
        [
            ("run folder", run_dir, ""),
            ("best model", run_dir / "best.keras", best_note),
            ("last model", run_dir / "last.keras", f"epoch {last['epoch']}" if "epoch" in last else ""),
            ("training log", run_dir / LOG_FILE, ""),
            ("TensorBoard", run_dir / "tensorboard", ""),
            ("config", run_dir / "config.yaml", ""),
        ],
        started,
    )
