"""Evaluate HA-CNN on a data set (the job behind `hacnn-tf evaluate`): a trained or imported checkpoint or any
exported model, all through one path, `Embedder.embed_files`, so an export is measured exactly as its checkpoint."""

from __future__ import annotations

import os
import pathlib

import pandas as pd

from hacnn_tf.convert.checkpoint import TORCH_SUFFIXES
from hacnn_tf.data.datasets import load_dataset
from hacnn_tf.errors import UserError
from hacnn_tf.evaluation.metrics import evaluate_from_features, results_table, write_results
from hacnn_tf.evaluation.resources import measure
from hacnn_tf.runtime import load_embedder
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
    """Evaluates `checkpoint` (any model `hacnn_tf.runtime.load_embedder` reads: a `.keras` file, a torchreid
    checkpoint, a SavedModel version folder, an export format folder or a model file of it) on the query/gallery
    split of `dataset` and writes `<output>.csv`, `<output>.md`,
    `<output>_cmc.png` and the curves behind it, `<output>_cmc.csv` (`read_cmc_csv`). Returns the table: metrics as
    fractions, then `seconds` and `peak_mib` (the evaluation's time and peak resident memory, from the embeddings).
    One row, plus `+ re-ranking` with `rerank`, `+ AQE` with `aqe`, and `+ AQE + re-ranking` with both. The images
    are embedded once; `table.attrs["embedding"]` holds that step's `seconds` and `peak_mib`."""
    if align_corners and pathlib.Path(checkpoint).suffix not in TORCH_SUFFIXES:
        raise UserError(
            f"{checkpoint}: align_corners applies to torchreid checkpoints (.pth, .pth.tar, .pt) only; "
            "a .keras file or an export keeps the convention it was built with: leave --align-corners out"
        )
    embedder = load_embedder(checkpoint, **({"align_corners": True} if align_corners else {}))
    data = load_dataset(dataset, root, **dataset_options)
    name = pathlib.Path(checkpoint).name
    with measure() as embedding:
        both = embedder.embed_files(list(data.query["path"]) + list(data.gallery["path"]), flip=flip)
        features = both[: len(data.query)], both[len(data.query) :]
    results, usages = {}, {}
    for expand in (False, True)[: 1 + aqe]:
        for rank_again in (False, True)[: 1 + rerank]:
            row = name + " + AQE" * expand + " + re-ranking" * rank_again
            with measure() as usages[row]:
                results[row] = evaluate_from_features(
                    *features,
                    data.query,
                    data.gallery,
                    metric=metric,
                    rerank=rank_again,
                    aqe=expand,
                    use_metric_cuhk03=use_metric_cuhk03,
                    seed=0,
                )
    table = results_table(results, percent=False)
    table["seconds"] = [usages[row]["seconds"] for row in table.index]
    table["peak_mib"] = [usages[row]["peak_mib"] for row in table.index]
    table.attrs["embedding"] = embedding
    write_results(table, output, float_format="{:.4f}")
    curves = {key: value["cmc"] for key, value in results.items()}
    write_cmc_csv(curves, f"{os.fspath(output)}_cmc.csv")
    plot_cmc(curves, f"{os.fspath(output)}_cmc.png", title=f"CMC on {data.name}")
    return table
