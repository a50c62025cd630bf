"""`hacnn-tf evaluate MODEL DATASET ROOT`: Rank-k, mAP (and more) of a model on a re-id data set. MODEL is a
checkpoint (.keras, or a torchreid .pth/.pth.tar/.pt) or an exported model (a SavedModel version folder, an export
format folder such as OUT/tflite-int8, or its .tflite/.onnx/.xml file), embedded the same way in every case.

Examples:
  hacnn-tf evaluate runs/market/best.keras market1501 /data/reid --output runs/market/eval --rerank --aqe
  hacnn-tf evaluate exported/tflite-int8 market1501 /data/reid

The evaluation runs from the embeddings, block by block (memory linear in the number of images, MSMT17 included);
the table gives Rank-k, mAP and mINP as fractions (as the demo and the training log do), and each row's time
(seconds) and peak resident memory (peak_mib). The tables and the CMC figure go to --output (default: beside the
checkpoint, <checkpoint folder>/<checkpoint name>_<dataset>.csv, .md, _cmc.png, _cmc.csv; for an export, beside its
format folder, never inside it).
"""

from __future__ import annotations

import argparse
import pathlib

from hacnn_tf.cli.options import add_align_corners, add_dataset, dataset_options
from hacnn_tf.cli.outputs import print_written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        metavar="MODEL",
        help="a .keras or torchreid checkpoint, a SavedModel version "
        "folder, an export format folder (OUT/tflite-int8) or a model file of one",
    )
    add_dataset(parser)
    parser.add_argument(
        "--output",
        help="path stem for .csv, .md, _cmc.png, _cmc.csv (default: <checkpoint folder>/<checkpoint name>_<dataset>)",
    )
    parser.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    parser.add_argument("--rerank", action="store_true", help="also report k-reciprocal re-ranking")
    parser.add_argument("--aqe", action="store_true", help="also report average query expansion (alpha-QE)")
    parser.add_argument(
        "--minp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show mINP (the inverse negative penalty) in the printed table (default: shown)",
    )
    parser.add_argument("--flip", action="store_true", help="average the embeddings of each image and its mirror")
    add_align_corners(parser)
    parser.add_argument("--cuhk03-classic-metric", action="store_true", help="CUHK03 single-gallery-shot CMC")


def default_output(checkpoint: str, dataset: str) -> str:
    """The --output stem beside the model: `runs/market/best.keras` -> `runs/market/best_market1501`; a model in an
    export format folder (the folder, a file or a SavedModel version folder in it) -> beside that folder,
    `OUT/tflite-int8_market1501`, so that nothing is added to a folder its manifest describes."""
    from hacnn_tf.manifest import MANIFEST

    path = pathlib.Path(checkpoint)
    for folder in [path, *path.parents][:4]:
        if folder.name and (folder / MANIFEST).is_file():
            return str(folder.parent / f"{folder.name}_{dataset}")
    return str(path.parent / f"{path.name.split('.')[0]}_{dataset}")


def run(args: argparse.Namespace) -> None:
    import time

    from hacnn_tf.evaluation.resources import describe
    from hacnn_tf.io_utils import check_writable
    from hacnn_tf.jobs.evaluate import evaluate_checkpoint

    started = time.perf_counter()
    output = args.output or default_output(args.checkpoint, args.dataset)
    check_writable(f"{output}.csv")  # before minutes of embedding
    table = evaluate_checkpoint(
        args.checkpoint,
        args.dataset,
        args.root,
        output,
        metric=args.metric,
        rerank=args.rerank,
        flip=args.flip,
        align_corners=args.align_corners,
        use_metric_cuhk03=args.cuhk03_classic_metric,
        aqe=args.aqe,
        **dataset_options(args),
    )
    shown = table if args.minp else table.drop(columns="mINP")
    print(shown.to_string(float_format=lambda v: f"{v:.4f}"))
    print(
        f"embedding: {describe(table.attrs['embedding'])}; each row's evaluation time (s) and peak resident "
        "memory (MiB) are in the columns seconds and peak_mib"
    )
    print_written(
        [
            ("results", f"{output}.csv", "and .md; fractions"),
            ("CMC figure", f"{output}_cmc.png", ""),
            ("CMC curves", f"{output}_cmc.csv", ""),
        ],
        started,
    )
