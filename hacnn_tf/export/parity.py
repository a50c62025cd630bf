"""Parity of exported models with the Keras model: embeddings, retrieval accuracy, size and latency."""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd

from hacnn_tf.evaluation.distance import compute_distance_matrix
from hacnn_tf.evaluation.metrics import evaluate, write_results
from hacnn_tf.export.all import parity
from hacnn_tf.model import HACNN
from hacnn_tf.runtime import Embedder, load_embedder
from hacnn_tf.runtime.files import pixel_batches
from hacnn_tf.runtime.keras_model import KerasEmbedder


def parity_report(
    model: HACNN,
    exported: Mapping[str, str | os.PathLike | Embedder],
    query: pd.DataFrame,
    gallery: pd.DataFrame,
    output: str | os.PathLike | None = None,
    saved_model_dir: str | os.PathLike | None = None,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """Compares exported models with the Keras model on the held-out query and gallery images, each embedding the
    image files as `hacnn-tf evaluate` does (`Embedder.embed_files`, a batch at a time).

    `exported` maps row names to model files or folders (any format `hacnn_tf.runtime.load_embedder` reads; TFLite
    files get `num_threads`) or to `Embedder`s. Rows: `keras` (the reference), `saved_model` (with
    `saved_model_dir`), then one per entry of `exported`. Columns: `max_abs_diff`, `mean_cosine`, `min_cosine`
    (embeddings against the Keras model's on the same pixels), `rank1`, `rank5`, `rank10`, `mAP` (Market-1501
    protocol, fractions), `size_mb` (of the file or folder), `latency_ms` (batch 1, median of single calls).
    Written to `<output>.csv` and `<output>.md` when `output` is given.
    """
    paths = list(query["path"]) + list(gallery["path"])
    keras_embedder = KerasEmbedder(model)
    reference = keras_embedder.embed_files(paths, progress=False)
    one_image = next(pixel_batches(paths[:1], model.input_size, 1))

    def compare(embedder: Embedder) -> dict[str, float]:
        features = embedder.embed_files(paths, progress=False)
        features_q, features_g = features[: len(query)], features[len(query) :]
        result = evaluate(compute_distance_matrix(features_q, features_g), query, gallery, ranks=(1, 5, 10))
        return {
            **parity(features, reference),
            **{k: float(result[k]) for k in ("rank1", "rank5", "rank10", "mAP")},
        }

    rows = {"keras": {**compare(keras_embedder), "size_mb": np.nan, "latency_ms": np.nan}}
    entries = {**({"saved_model": saved_model_dir} if saved_model_dir is not None else {}), **exported}
    for name, entry in entries.items():
        if isinstance(entry, Embedder):
            embedder, size = entry, np.nan
        else:
            path = pathlib.Path(entry)
            options = {"num_threads": num_threads} if path.suffix == ".tflite" else {}
            embedder, size = load_embedder(path, **options), model_size_mb(path)
        rows[name] = {**compare(embedder), "size_mb": size, "latency_ms": latency_ms(embedder, one_image)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    if output is not None:
        write_results(table, output, float_format="{:.6g}")
    return table


def latency_ms(embedder: Embedder, image: np.ndarray, runs: int = 30, warmup: int = 5) -> float:
    """Median wall time of `embedder(image)` for a batch of one, in milliseconds."""
    for _ in range(warmup):
        embedder(image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        embedder(image)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def model_size_mb(path: str | os.PathLike) -> float:
    """MiB of a model on disk: a folder's files, or a file with the files beside it that share its stem (an
    OpenVINO `model.xml` holds the graph, its `model.bin` the weights)."""
    path = pathlib.Path(path)
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
    else:
        files = [p for p in path.parent.iterdir() if p.is_file() and p.stem == path.stem]
    return sum(p.stat().st_size for p in files) / 2**20
