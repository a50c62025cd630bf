"""Evaluate a trained or imported HA-CNN checkpoint on a data set (the job behind `hacnn-tf evaluate`)."""

from __future__ import annotations

import os
import pathlib

import pandas as pd

from hacnn_tf.convert.checkpoint import load_checkpoint
from hacnn_tf.data.datasets import load_dataset
from hacnn_tf.evaluation.features import embed_query_gallery
from hacnn_tf.evaluation.metrics import evaluate_from_features, results_table, write_results
from hacnn_tf.evaluation.resources import measure
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
    aqe: bool = False,
    **dataset_options,
) -> pd.DataFrame:
    """Evaluates `checkpoint` on the query/gallery split of `dataset` and writes `<output>.csv`, `<output>.md`,
    `<output>_cmc.png` and the curves behind it, `<output>_cmc.csv` (`read_cmc_csv`). Returns the table: metrics in
    percent, then `seconds` and `peak_mib` (the evaluation's time and peak resident memory, from the embeddings).
    One row, plus `+ re-ranking` with `rerank`, `+ AQE` with `aqe`, and `+ AQE + re-ranking` with both. The images
    are embedded once; `table.attrs["embedding"]` holds that step's `seconds` and `peak_mib`."""
    model = load_checkpoint(checkpoint, align_corners)
    data = load_dataset(dataset, root, **dataset_options)
    name = pathlib.Path(checkpoint).name
    with measure() as embedding:
        features = embed_query_gallery(model, data.query, data.gallery, flip=flip)
    results, usages = {}, {}
    for expand in (False, True)[: 1 + aqe]:
        for rank_again in (False, True)[: 1 + rerank]:
            row = name + " + AQE" * expand + " + re-ranking" * rank_again
            with measure() as usages[row]:
                results[row] = evaluate_from_features(*features, data.query, data.gallery, metric=metric,
                                                      rerank=rank_again, aqe=expand,
                                                      use_metric_cuhk03=use_metric_cuhk03, seed=0)
    table = results_table(results)
    table["seconds"] = [usages[row]["seconds"] for row in table.index]
    table["peak_mib"] = [usages[row]["peak_mib"] for row in table.index]
    table.attrs["embedding"] = embedding
    write_results(table, output)
    curves = {key: value["cmc"] for key, value in results.items()}
    write_cmc_csv(curves, f"{os.fspath(output)}_cmc.csv")
    plot_cmc(curves, f"{os.fspath(output)}_cmc.png", title=f"CMC on {data.name}")
    return table
