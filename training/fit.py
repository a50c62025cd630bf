"""Train HA-CNN with model.fit from a config file: `python -m training.fit CONFIG [--set section.field=value ...]`.

Example: python -m training.fit training/configs/market1501_paper_softmax.yaml --set data.root=/data/reid

Rerunning the same command resumes an interrupted run and does nothing for a finished one; a larger train.epochs
continues a finished run. --overwrite moves the run in output.dir aside (to <dir>.old-<time>) and starts over.

Several GPUs: --set distribute.strategy=mirrored. Several machines: --set distribute.strategy=multi_worker on every
worker, each with its own TF_CONFIG (see hacnn_tf/distribute.py).
"""

from __future__ import annotations

import argparse
import logging

from hacnn_tf import distribute
from hacnn_tf.trainer import fit, load_config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="YAML or JSON config (training/configs/*.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override a config field (YAML value), e.g. --set train.epochs=5")
    parser.add_argument("--overwrite", action="store_true",
                        help="move the run already in output.dir aside (never deleted) and train from scratch")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config, args.overrides)
    distribute.initialize(config)  # first: MultiWorkerMirroredStrategy must exist before any other TF op runs
    fit(config, overwrite=args.overwrite)


if __name__ == "__main__":
    main()
