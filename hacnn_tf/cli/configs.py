"""`hacnn-tf configs [NAME]`: lists the packaged experiment configs, or prints one merged with its bases."""

from __future__ import annotations

import argparse

import yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="a packaged config name or a config file: print it, bases merged")


def run(args: argparse.Namespace) -> None:
    from hacnn_tf.configs import list_configs, resolve_config

    if args.name is None:
        print("\n".join(list_configs()))
        return
    from hacnn_tf.trainer import load_config

    print(f"# {resolve_config(args.name)}")
    print(yaml.safe_dump(load_config(resolve_config(args.name)), sort_keys=False), end="")
