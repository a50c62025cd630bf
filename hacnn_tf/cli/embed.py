"""`hacnn-tf embed MODEL INPUT... --output FILE.npz`: embeddings of image files, folders or a data set split in one
.npz file.

Examples:
  hacnn-tf embed demo/export/saved_model-fp32/hacnn/1 demo/data/query --output query.npz
  hacnn-tf embed OUT/tflite-int8 --dataset market1501 --root /data/reid --split gallery --output gallery.npz

MODEL is any model `load_embedder` reads: a .keras or torchreid checkpoint, a SavedModel version folder, or an export
format folder (OUT/tflite-int8, read through its manifest.json). INPUT is image files and folders (searched
recursively for .jpg, .jpeg, .png, .bmp, .gif, .webp; hidden files left out); images of any size are decoded and
resized as the exported SavedModel's serving_default does. The .npz holds `paths` (str) and `embeddings` ((N, D)
float32, row i of paths[i]), plus `pids` and `camids` for a data set split. A row has norm sqrt(2) (the global and
local branches, each L2-normalised); --normalize scales rows to unit norm.
"""

from __future__ import annotations

import argparse

from hacnn_tf.cli.options import add_dataset, dataset_options
from hacnn_tf.cli.outputs import print_written

SPLIT_CHOICES = ("query", "gallery", "train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="checkpoint, SavedModel version folder or export format folder")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders (recursive)")
    parser.add_argument("--output", required=True, metavar="FILE.npz", help="the .npz file to write")
    add_dataset(parser, required=False)
    parser.add_argument("--split", choices=SPLIT_CHOICES, help="with --dataset: the split to embed")
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="scale each embedding to unit norm (default: norm sqrt(2), two unit-norm branches)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="images decoded and embedded at a time")


def run(args: argparse.Namespace) -> None:
    import time

    from hacnn_tf.errors import UserError
    from hacnn_tf.jobs.embed import embed_to_file

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be a positive integer; got {args.batch_size}")
    started = time.perf_counter()
    summary = embed_to_file(
        args.model,
        args.output,
        args.inputs,
        dataset=args.dataset,
        root=args.root,
        split=args.split,
        normalize=args.normalize,
        batch_size=args.batch_size,
        **dataset_options(args),
    )
    rows = "unit-norm rows" if args.normalize else "rows of norm sqrt(2)"
    skipped = f"; {summary['skipped']} unreadable file(s) of the data set left out" if summary["skipped"] else ""
    print_written(
        [("embeddings", args.output, f"{summary['images']:,} x {summary['dim']} float32, {rows}{skipped}")], started
    )
