"""`hacnn-tf evaluate CHECKPOINT DATASET ROOT`: Rank-k, mAP (and more) of a checkpoint (.keras, or a torchreid
.pth/.pth.tar/.pt) on a re-id data set.

Example: hacnn-tf evaluate runs/market/best.keras market1501 /data/reid --output runs/market/eval --rerank --aqe

The evaluation runs from the embeddings, block by block (memory linear in the number of images, MSMT17 included);
the table gives Rank-k, mAP and mINP in percent, and each row's time (seconds) and peak resident memory (peak_mib).
"""

from __future__ import annotations

import argparse

from hacnn_tf.cli.options import add_align_corners, add_dataset, dataset_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint")
    add_dataset(parser)
    parser.add_argument("--output", default="evaluation", help="path stem for .csv, .md, _cmc.png, _cmc.csv")
    parser.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    parser.add_argument("--rerank", action="store_true", help="also report k-reciprocal re-ranking")
    parser.add_argument("--aqe", action="store_true", help="also report average query expansion (alpha-QE)")
    parser.add_argument("--minp", action=argparse.BooleanOptionalAction, default=True,
                        help="show mINP (the inverse negative penalty) in the printed table (default: shown)")
    parser.add_argument("--flip", action="store_true", help="average the embeddings of each image and its mirror")
    add_align_corners(parser)
    parser.add_argument("--cuhk03-classic-metric", action="store_true", help="CUHK03 single-gallery-shot CMC")


def run(args: argparse.Namespace) -> None:
    from hacnn_tf.jobs.evaluate import evaluate_checkpoint
    from hacnn_tf.evaluation.resources import describe

    table = evaluate_checkpoint(args.checkpoint, args.dataset, args.root, args.output, metric=args.metric,
                                rerank=args.rerank, flip=args.flip, align_corners=args.align_corners,
                                use_metric_cuhk03=args.cuhk03_classic_metric, aqe=args.aqe, **dataset_options(args))
    shown = table if args.minp else table.drop(columns="mINP")
    print(shown.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"embedding: {describe(table.attrs['embedding'])}; each row's evaluation time (s) and peak resident "
          "memory (MiB) are in the columns seconds and peak_mib")
    print(f"written to {args.output}.csv, {args.output}.md, {args.output}_cmc.png and {args.output}_cmc.csv")
