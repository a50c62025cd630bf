"""Evaluate a trained or imported HA-CNN checkpoint on a data set: the library behind `training/evaluate.py`."""

from __future__ import annotations

import os
import pathlib

import pandas as pd

from hacnn_tf.convert.checkpoint import load_checkpoint
from hacnn_tf.data.datasets import load_dataset
from hacnn_tf.evaluation.features import evaluate_model
from hacnn_tf.evaluation.metrics import results_table, write_results
from hacnn_tf.visualization.curves import plot_cmc, write_cmc_csv


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    dataset: str,
    root: str | os.PathLike,
    output: str | os.PathLike,
    metric: str = "euclidean",
    rerank: bool = False,
    flip: bool = False,
    align_corners: bool = False,
    use_metric_cuhk03: bool = False,
    **dataset_options,
) -> pd.DataFrame:
    """Evaluates `checkpoint` on the query/gallery split of `dataset` and writes `<output>.csv`, `<output>.md`,
    `<output>_cmc.png` and the curves behind it, `<output>_cmc.csv` (`read_cmc_csv`). Returns the table (percent):
    one row, two with `rerank` (plain and re-ranked)."""
    model = load_checkpoint(checkpoint, align_corners)
    data = load_dataset(dataset, root, **dataset_options)
    name = pathlib.Path(checkpoint).name
    kwargs = dict(metric=metric, flip=flip, use_metric_cuhk03=use_metric_cuhk03)
    results = {name: evaluate_model(model, data.query, data.gallery, **kwargs)}
    if rerank:
        results[f"{name} + re-ranking"] = evaluate_model(model, data.query, data.gallery, rerank=True, **kwargs)
    table = results_table(results)
    write_results(table, output)
    curves = {key: value["cmc"] for key, value in results.items()}
    write_cmc_csv(curves, f"{os.fspath(output)}_cmc.csv")
    plot_cmc(curves, f"{os.fspath(output)}_cmc.png", title=f"CMC on {data.name}")
    return table
