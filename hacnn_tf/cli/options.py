"""Options shared by several `hacnn-tf` subcommands, defined once."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from hacnn_tf.errors import InputFileError

if TYPE_CHECKING:
    from hacnn_tf.config import Config

DATASETS = "market1501, dukemtmcreid, cuhk03, msmt17 or folder"


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override a config field (a YAML value), e.g. --set train.epochs=5; repeatable",
    )


def add_align_corners(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--align-corners",
        action="store_true",
        help="a torchreid checkpoint trained with PyTorch <= 1.2 (torchreid's 2018-2019 model zoo)",
    )


def add_dataset(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """`dataset` and `root` positionals (or `--dataset`/`--root` options when not `required`)."""
    if required:
        parser.add_argument("dataset", help=DATASETS)
        parser.add_argument("root", help="folder holding the data set")
    else:
        parser.add_argument("--dataset", help=DATASETS)
        parser.add_argument("--root", help="folder holding the data set")
    parser.add_argument("--cuhk03-labeled", action="store_true", help="CUHK03: labelled instead of detected boxes")


def dataset_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of `load_dataset` from the parsed data set options."""
    return {"cuhk03_labeled": True} if getattr(args, "cuhk03_labeled", False) else {}


def config_from_args(name: str | os.PathLike | None, overrides: list[str]) -> Config:
    """The config of a packaged name or file (None: the defaults) with `--set` overrides, validated; raises
    `InputFileError` for a name that is neither a file nor a packaged config, and `load_config`'s `ConfigError`
    or `InputFileError` (naming the file or field) for one that does not read or validate."""
    from hacnn_tf.config import load_config
    from hacnn_tf.configs import resolve_config

    try:
        path = resolve_config(name) if name else None
    except FileNotFoundError as error:
        raise InputFileError(f"{error} (`hacnn-tf configs` lists them)") from None
    return load_config(path, overrides)
