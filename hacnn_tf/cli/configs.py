"""`hacnn-tf configs [NAME]`: lists the packaged experiment configs with a line on each, or prints one merged with
its bases.

Example: hacnn-tf configs market1501_paper_softmax
"""

from __future__ import annotations

import argparse
import os
import pathlib
from typing import TYPE_CHECKING

import yaml

from hacnn_tf.cli.options import config_from_args

if TYPE_CHECKING:
    from hacnn_tf.config import Config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="a packaged config name or a config file: print it, bases merged")


def config_description(path: str | os.PathLike, config: Config) -> str:
    """One line on a config: the first sentence of its leading comment (the data set, recipe and losses) and the
    settings that tell recipes apart (optimizer, learning rate, epochs, batch, input size)."""
    first = ""
    for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            first = line.lstrip("# ").split(". ")[0].rstrip(".")
            break
    optimizer, train = config.optimizer, config.train
    height, width = config.model.input_size
    settings = (
        f"{optimizer.name} lr {optimizer.learning_rate:g}, {train.epochs} epochs, batch {train.batch_size}, "
        f"{height}x{width}"
    )
    return f"{first} ({settings})" if first else settings


def run(args: argparse.Namespace) -> None:
    from hacnn_tf.configs import list_configs, resolve_config

    if args.name is None:
        names = list_configs()
        width = max(map(len, names))
        print(
            "Packaged configs (`hacnn-tf configs NAME` prints one; `hacnn-tf fit NAME --set data.root=DIR` trains it):"
        )
        for name in names:
            print(f"  {name:<{width}}  {config_description(resolve_config(name), config_from_args(name, []))}")
        return
    config = config_from_args(args.name, [])
    print(f"# {resolve_config(args.name)}")
    print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
