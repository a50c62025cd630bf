"""The standard figure set of a trained model on a data set (what `make demo` writes under `figures/`)."""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from hacnn_tf.data.datasets import ReIDDataset
from hacnn_tf.data.pipeline import load_pixels
from hacnn_tf.evaluation.features import query_gallery_distances
from hacnn_tf.evaluation.metrics import evaluate
from hacnn_tf.model import HACNN
from hacnn_tf.visualization.attention import plot_attention
from hacnn_tf.visualization.curves import plot_cmc, plot_training_curves
from hacnn_tf.visualization.ranking import plot_ranked_lists

__all__ = ["attention_examples", "write_demo_figures"]

logger = logging.getLogger(__name__)


def attention_examples(table: pd.DataFrame, count: int) -> pd.DataFrame:
    """`count` rows of `table` for attention figures: the first image of each identity, in table order, then (if
    there are fewer identities) the next unused rows."""
    first = table.drop_duplicates("pid")
    rest = table.drop(index=first.index)
    return pd.concat([first, rest]).head(count)


def write_demo_figures(
    model: HACNN,
    dataset: ReIDDataset,
    workdir: str | os.PathLike[str],
    label: str = "HA-CNN",
    other_curves: Mapping[str, np.ndarray] | None = None,
) -> list[pathlib.Path]:
    """Writes into `workdir/figures/`: `attention.png` (8 query images, `plot_attention`), `ranked_lists.png`
    (5 queries drawn with seed 0, top 10, `plot_ranked_lists`), `cmc.png` (the model's CMC on the query/gallery
    split, Euclidean distance, curve named `label`, drawn after `other_curves`, e.g. `{"untrained": cmc}`) and,
    when `workdir/train/training_log.csv` exists, `training_curves.png`. Returns the paths written, in that
    order."""
    figures = pathlib.Path(workdir) / "figures"
    examples = attention_examples(dataset.query, 8)
    paths = [plot_attention(model, load_pixels(examples, model.input_size), figures / "attention.png")]

    distmat = query_gallery_distances(model, dataset.query, dataset.gallery)
    paths.append(
        plot_ranked_lists(
            dataset.query, dataset.gallery, distmat, figures / "ranked_lists.png", num_queries=5, top_k=10, seed=0
        )
    )
    cmc = evaluate(distmat, dataset.query, dataset.gallery)["cmc"]
    curves = {**(other_curves or {}), label: np.asarray(cmc)}
    paths.append(plot_cmc(curves, figures / "cmc.png", title=f"CMC on {dataset.name}"))

    log = pathlib.Path(workdir) / "train" / "training_log.csv"
    if log.is_file():
        paths.append(plot_training_curves(log, figures / "training_curves.png"))
    else:
        logger.warning("no training log at %s: training_curves.png not written", log)
    return paths
