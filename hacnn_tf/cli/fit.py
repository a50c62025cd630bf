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

from hacnn_tf.cli.options import add_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="packaged config name or YAML/JSON file (defaults only if omitted)")
    add_overrides(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="move the run already in output.dir aside (never deleted) and train from scratch")


def run(args: argparse.Namespace) -> None:
    import logging

    from hacnn_tf import distribute
    from hacnn_tf.configs import resolve_config
    from hacnn_tf.trainer import fit, load_config

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(resolve_config(args.config) if args.config else None, args.overrides)
    distribute.initialize(config)  # first: MultiWorkerMirroredStrategy must exist before any other TF op runs
    fit(config, overwrite=args.overwrite)
