"""`hacnn-tf`: the command of the package. Each subcommand is a module here with `add_arguments(parser)` and
`run(args)`; `python -m training.fit`, `python -m export.saved_model` and the other repository scripts call the same
modules.

Exit codes: 0 on success; 2 for a user error (a `hacnn_tf.errors.UserError`: a config field, a file, a data layout,
an option, a missing extra; also what argparse refuses), printed as one line `hacnn-tf SUB: error: ...` without a
traceback (`--debug` or `HACNN_TF_DEBUG=1` adds it); 130 when interrupted (Ctrl-C); an unexpected (internal) error
keeps Python's traceback and exits 1.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from hacnn_tf._startup import SHOW_NATIVE_LOGS_ENV
from hacnn_tf.errors import UserError

# name -> (module under hacnn_tf.cli, one-line help)
SUBCOMMANDS = {
    "demo": ("demo", "train and evaluate on the built-in synthetic data set, export, write figures"),
    "fit": ("fit", "train with model.fit from a packaged config or a config file"),
    "evaluate": ("evaluate", "Rank-k and mAP of a checkpoint on a data set"),
    "embed": ("embed", "embeddings of image files, folders or a data set split in one .npz file"),
    "export": ("export", "every deployment format (SavedModel, TFLite, ONNX, OpenVINO), each checked against Keras"),
    "convert": ("convert", "a torchreid checkpoint as a .keras file"),
    "verify": ("verify", "check exported format folders against their manifests and scan their models"),
    "visualize": ("visualize", "figures: attention maps, ranked lists, training and CMC curves"),
    "configs": ("configs", "list the packaged configs, or print one"),
    "bench": ("bench", "speed and memory against torchreid (needs the bench extra)"),
}
DEBUG_ENV = "HACNN_TF_DEBUG"
USER_ERROR_EXIT = 2  # as argparse exits on a bad command line
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as shells report it
# Errors of the operating system about a path the user named that the user fixes (permissions, a full or read-only
# disk), reported like a UserError; any other OSError is internal.
_USER_OS_ERRORS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT}


def _module(name: str):
    return importlib.import_module(f"hacnn_tf.cli.{SUBCOMMANDS[name][0]}")


def add_run_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """`--debug` and `--verbose` on `parser` and on every subcommand parser under it, so that they go anywhere on
    the command line. Only the `top` parser sets their defaults (False); the others leave a value parsed before."""
    default = False if top else argparse.SUPPRESS
    parser.add_argument(
        "--debug", action="store_true", default=default, help=f"show the traceback of an error (also {DEBUG_ENV}=1)"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=default,
        help=f"show the log lines of TensorFlow, LiteRT and OpenVINO themselves (also {SHOW_NATIVE_LOGS_ENV}=1)",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):
                add_run_options(subparser)


def build_parser() -> argparse.ArgumentParser:
    from hacnn_tf import __version__

    parser = argparse.ArgumentParser(
        prog="hacnn-tf",
        description="HA-CNN person re-identification in TensorFlow / Keras 3: train, evaluate, export, visualise.",
    )
    parser.add_argument("--version", action="version", version=f"hacnn-tf {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        module = _module(name)
        sub = commands.add_parser(
            name, help=help_text, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    add_run_options(parser, top=True)
    return parser


def run_command(prog: str, args: argparse.Namespace) -> int:
    """Runs the parsed subcommand `args.run(args)` under the exit-code contract of this module: returns 0, or
    prints a user error as `PROG: error: MESSAGE` and raises `SystemExit(2)` (130 when interrupted)."""
    debug = bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV) == "1"
    if getattr(args, "verbose", False):
        os.environ[SHOW_NATIVE_LOGS_ENV] = "1"  # for what this process starts (self-check, converters) and does next
    try:
        args.run(args)
    except UserError as error:
        _refuse(prog, str(error), debug)
        raise SystemExit(USER_ERROR_EXIT) from None
    except OSError as error:
        if error.errno not in _USER_OS_ERRORS or error.filename is None:
            raise
        _refuse(
            prog,
            f"{error.filename}: {error.strerror} (free space or fix the permissions there, or choose "
            "another output folder)",
            debug,
        )
        raise SystemExit(USER_ERROR_EXIT) from None
    except KeyboardInterrupt:
        _refuse(prog, "interrupted", debug)
        raise SystemExit(INTERRUPTED_EXIT) from None
    return 0


def _refuse(prog: str, message: str, debug: bool) -> None:
    sys.stdout.flush()
    if debug:
        traceback.print_exc()
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """The `hacnn-tf` console script: returns 0 on success; raises `SystemExit` with the code of the contract in
    this module's docstring otherwise."""
    args = build_parser().parse_args(argv)
    return run_command(f"hacnn-tf {args.command}", args)


def subcommand_main(name: str, argv: Sequence[str] | None = None) -> int:
    """One subcommand as a program of its own (`python -m training.fit ...` is `hacnn-tf fit ...`), with the same
    options, output and exit codes."""
    module = _module(name)
    parser = argparse.ArgumentParser(
        prog=f"{sys.argv[0]}", description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    module.add_arguments(parser)
    parser.set_defaults(run=module.run)
    add_run_options(parser, top=True)
    return run_command(f"hacnn-tf {name}", parser.parse_args(argv))
