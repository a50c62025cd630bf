r"""Figures as PNG files: attention maps and regions, ranked lists, training and CMC curves.

Examples:
  hacnn-tf visualize attention --checkpoint runs/market/best.keras --dataset market1501 --root /data/reid \
      --num-images 8 --output figures/attention.png
  hacnn-tf visualize attention --checkpoint hacnn_market.pth.tar --images a.jpg b.jpg --output att.png
  hacnn-tf visualize attention --untrained --set 'model.nchannels=[16,32,48]' --images a.jpg
  hacnn-tf visualize ranks runs/market/best.keras market1501 /data/reid --output figures/ranks.png
  hacnn-tf visualize curves --log runs/market/training_log.csv --cmc runs/market/eval_cmc.csv \
      --output-dir figures
"""

from __future__ import annotations

import argparse
import pathlib

import keras
import pandas as pd

from hacnn_tf.cli.options import (
    DATASETS,
    add_align_corners,
    add_dataset,
    add_overrides,
    config_from_args,
    dataset_options,
)
from hacnn_tf.convert.checkpoint import load_checkpoint
from hacnn_tf.data.datasets import load_dataset
from hacnn_tf.data.pipeline import load_pixels
from hacnn_tf.errors import DataError, InputFileError, UserError
from hacnn_tf.evaluation.features import query_gallery_distances
from hacnn_tf.model import HACNN
from hacnn_tf.trainer import build_model
from hacnn_tf.visualization.attention import plot_attention
from hacnn_tf.visualization.curves import plot_cmc, plot_training_curves, read_cmc_csv
from hacnn_tf.visualization.ranking import choose_queries, plot_ranked_lists


def attention_model(args: argparse.Namespace) -> HACNN:
    """The checkpoint's model, or with `--untrained` a freshly initialised one (seeded) from the config."""
    if args.untrained:
        keras.utils.set_random_seed(args.seed)
        return build_model(config_from_args(args.config, args.overrides), None)
    return load_checkpoint(args.checkpoint, args.align_corners)


def attention_images(args: argparse.Namespace) -> pd.DataFrame:
    """The images to show: the `--images` files, or `--num-images` rows drawn from a split of the data set."""
    if args.images:
        return pd.DataFrame({"path": [str(pathlib.Path(p)) for p in args.images]})
    table = getattr(load_dataset(args.dataset, args.root, **dataset_options(args)), args.split)
    return table.iloc[choose_queries(len(table), args.num_images, args.seed)]


def run_attention(args: argparse.Namespace) -> list[pathlib.Path]:
    if args.dataset and not args.root:
        raise UserError("attention: --dataset needs --root (the folder that holds the data set)")
    if (args.config or args.overrides) and not args.untrained:
        raise UserError("attention: --config/--set build an --untrained model; leave them out with --checkpoint")
    missing = [path for path in args.images or () if not pathlib.Path(path).is_file()]
    if missing:
        raise InputFileError(f"attention: --images: {missing[0]} is not a file")
    model = attention_model(args)
    pixels = load_pixels(attention_images(args), model.input_size)
    return [plot_attention(model, pixels, args.output, panel_width=args.panel_width, dpi=args.dpi)]


def run_ranks(args: argparse.Namespace) -> list[pathlib.Path]:
    model = load_checkpoint(args.checkpoint, args.align_corners)
    data = load_dataset(args.dataset, args.root, **dataset_options(args))
    distmat = query_gallery_distances(
        model, data.query, data.gallery, metric=args.metric, rerank=args.rerank, flip=args.flip
    )
    return [
        plot_ranked_lists(
            data.query,
            data.gallery,
            distmat,
            args.output,
            query_indices=args.query_indices,
            num_queries=args.num_queries,
            top_k=args.top_k,
            seed=args.seed,
            dpi=args.dpi,
        )
    ]


def run_curves(args: argparse.Namespace) -> list[pathlib.Path]:
    if not args.log and not args.cmc:
        raise UserError("curves: give --log (a training_log.csv) and/or --cmc (a *_cmc.csv)")
    for option, path in [("--log", args.log), *(("--cmc", path) for path in args.cmc or ())]:
        if path and not pathlib.Path(path).is_file():
            raise InputFileError(f"curves: {option}: {path} is not a file")
    output = pathlib.Path(args.output_dir)
    paths = []
    try:
        if args.log:
            paths.append(plot_training_curves(args.log, output / "training_curves.png"))
        if args.cmc:
            curves = {}
            for path in args.cmc:
                curves.update(read_cmc_csv(path))
            paths.append(plot_cmc(curves, output / "cmc.png", max_rank=args.max_rank))
    except (ValueError, pd.errors.ParserError) as error:  # a file that is not a training log / CMC file
        raise DataError(f"curves: {error}") from None
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="figure", required=True)

    attention = commands.add_parser("attention", help="soft attention maps and hard attention regions per level")
    source = attention.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help=".keras checkpoint or torchreid .pth/.pth.tar/.pt")
    source.add_argument("--untrained", action="store_true", help="a freshly initialised model from --config/--set")
    attention.add_argument("--config", help="training config whose model section builds the --untrained model")
    add_overrides(attention)
    images = attention.add_mutually_exclusive_group(required=True)
    images.add_argument("--images", nargs="+", metavar="FILE", help="image files (resized to the model's input)")
    images.add_argument("--dataset", help=f"{DATASETS} (with --root): draw --num-images from --split")
    attention.add_argument("--root", help="folder holding the data set")
    attention.add_argument("--cuhk03-labeled", action="store_true", help="CUHK03: labelled instead of detected boxes")
    attention.add_argument("--split", choices=("query", "gallery", "train"), default="query")
    attention.add_argument("--num-images", type=int, default=8)
    attention.add_argument("--seed", type=int, default=0, help="image draw; weights of --untrained")
    attention.add_argument("--panel-width", type=float, default=1.2, help="inches per column")
    attention.add_argument("--dpi", type=float, default=100)
    attention.add_argument("--output", default="attention.png")
    add_align_corners(attention)
    attention.set_defaults(draw=run_attention)

    ranks = commands.add_parser("ranks", help="top-k gallery matches of some queries")
    ranks.add_argument("checkpoint", help=".keras checkpoint or torchreid .pth/.pth.tar/.pt")
    add_dataset(ranks)
    ranks.add_argument("--output", default="ranked_lists.png")
    ranks.add_argument("--query-indices", type=int, nargs="+", help="query rows to show (default: drawn)")
    ranks.add_argument("--num-queries", type=int, default=5)
    ranks.add_argument("--top-k", type=int, default=10)
    ranks.add_argument("--seed", type=int, default=0, help="query draw")
    ranks.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    ranks.add_argument("--rerank", action="store_true", help="rank by k-reciprocal re-ranked distances")
    ranks.add_argument("--flip", action="store_true", help="average the embeddings of each image and its mirror")
    ranks.add_argument("--dpi", type=float, default=100)
    add_align_corners(ranks)
    ranks.set_defaults(draw=run_ranks)

    curves = commands.add_parser("curves", help="training curves and/or CMC curves from saved files")
    curves.add_argument("--log", help="training_log.csv of a run -> training_curves.png")
    curves.add_argument("--cmc", nargs="+", metavar="CSV", help="*_cmc.csv from training.evaluate -> cmc.png")
    curves.add_argument("--max-rank", type=int, default=20)
    curves.add_argument("--output-dir", default=".")
    curves.set_defaults(draw=run_curves)


def run(args: argparse.Namespace) -> list[pathlib.Path]:
    """Draws the figure `args.figure`; prints and returns the paths written."""
    paths = args.draw(args)
    for path in paths:
        print(f"written {path}")
    return paths
