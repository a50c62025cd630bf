"""`hacnn-tf`: the command of the package. Each subcommand is a module here with `add_arguments(parser)` and
`run(args)`; `python -m training.fit`, `python -m export.saved_model` and the other repository scripts call the same
modules."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# name -> (module under hacnn_tf.cli, one-line help)
SUBCOMMANDS = {
    "demo": ("demo", "train and evaluate on the built-in synthetic data set, export, write figures"),
    "fit": ("fit", "train with model.fit from a packaged config or a config file"),
    "evaluate": ("evaluate", "Rank-k and mAP of a checkpoint on a data set"),
    "export": ("export", "every deployment format (SavedModel, TFLite, ONNX, OpenVINO), each checked against Keras"),
    "convert": ("convert", "a torchreid checkpoint as a .keras file"),
    "visualize": ("visualize", "figures: attention maps, ranked lists, training and CMC curves"),
    "configs": ("configs", "list the packaged configs, or print one"),
    "bench": ("bench", "speed and memory against torchreid (needs the bench extra)"),
}


def _module(name: str):
    return importlib.import_module(f"hacnn_tf.cli.{SUBCOMMANDS[name][0]}")


def build_parser() -> argparse.ArgumentParser:
    from hacnn_tf import __version__

    parser = argparse.ArgumentParser(prog="hacnn-tf", description="HA-CNN person re-identification in TensorFlow / "
                                     "Keras 3: train, evaluate, export, visualise.")
    parser.add_argument("--version", action="version", version=f"hacnn-tf {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        module = _module(name)
        sub = commands.add_parser(name, help=help_text, description=module.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None):
    args = build_parser().parse_args(argv)
    return args.run(args)


def subcommand_main(name: str, argv: Sequence[str] | None = None):
    """One subcommand as a program of its own (`python -m training.fit ...` is `hacnn-tf fit ...`)."""
    module = _module(name)
    parser = argparse.ArgumentParser(prog=f"{sys.argv[0]}", description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))
