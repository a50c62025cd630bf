"""`hacnn-tf convert CHECKPOINT OUTPUT.keras`: a torchreid HA-CNN checkpoint (.pth, .pth.tar, .pt) as a .keras file."""

from __future__ import annotations

import argparse
import pathlib

from hacnn_tf.cli.options import add_align_corners
from hacnn_tf.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="torchreid checkpoint (.pth, .pth.tar or .pt)")
    parser.add_argument("output", help="the .keras file to write (atomically)")
    add_align_corners(parser)
    parser.add_argument("--num-classes", type=int, default=None, help="check the classifier size")


def run(args: argparse.Namespace) -> None:
    from hacnn_tf.convert.torchreid import from_torchreid
    from hacnn_tf.errors import CheckpointError, InputFileError, require_extras
    from hacnn_tf.io_utils import save_model_atomically

    checkpoint = pathlib.Path(args.checkpoint)
    if not checkpoint.is_file():
        raise InputFileError(f"torchreid checkpoint not found: {checkpoint}")
    if not args.output.endswith(".keras"):
        raise UserError(f"OUTPUT.keras: {args.output} must end with .keras (Keras writes the format by the suffix)")
    require_extras("reading a torchreid checkpoint", "torch")
    try:
        model = from_torchreid(checkpoint, align_corners=args.align_corners, num_classes=args.num_classes)
    except ValueError as error:
        raise CheckpointError(str(error)) from error
    path = save_model_atomically(model, args.output)
    print(
        f"wrote {path} ({model.count_params():,} parameters, embedding {model.embedding_dim}-d, "
        f"align_corners={args.align_corners})"
    )


def main(argv=None) -> int:
    """The `hacnn-convert-torchreid` console script: `hacnn-tf convert` under its earlier name."""
    from hacnn_tf.cli import subcommand_main

    return subcommand_main("convert", argv)


if __name__ == "__main__":
    raise SystemExit(main())
