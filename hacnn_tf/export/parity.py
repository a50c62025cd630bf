"""Parity of exported models with the Keras model: embeddings, retrieval accuracy, size and latency."""

from __future__ import annotations

import os
import pathlib
import time
from typing import Mapping

import numpy as np
import pandas as pd

from hacnn_tf.data.pipeline import load_pixels
from hacnn_tf.evaluation.distance import compute_distance_matrix
from hacnn_tf.evaluation.metrics import evaluate, write_results
from hacnn_tf.model import HACNN
from hacnn_tf.runtime import Embedder, load_embedder
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
    """Compares exported models with the Keras model on the held-out query and gallery images.

    `exported` maps row names to model files or folders (any format `hacnn_tf.runtime.load_embedder` reads; TFLite
    files get `num_threads`) or to `Embedder`s. Rows: `keras` (the reference), `saved_model` (with
    `saved_model_dir`), then one per entry of `exported`. Columns: `max_abs_diff`, `mean_cosine`, `min_cosine`
    (embeddings against the Keras model's on the same pixels), `rank1`, `rank5`, `rank10`, `mAP` (Market-1501
    protocol, fractions), `size_mb` (of the file or folder), `latency_ms` (batch 1, median of single calls).
    Written to `<output>.csv` and `<output>.md` when `output` is given.
    """
    pixels_q = load_pixels(query, model.input_size)
    pixels_g = load_pixels(gallery, model.input_size)
    keras_embedder = KerasEmbedder(model)
    reference_q, reference_g = keras_embedder(pixels_q), keras_embedder(pixels_g)
    reference = np.concatenate([reference_q, reference_g])

    def compare(embedder: Embedder) -> dict[str, float]:
        features_q, features_g = embedder(pixels_q), embedder(pixels_g)
        features = np.concatenate([features_q, features_g])
        cosine = np.sum(features * reference, axis=1) / (
            np.linalg.norm(features, axis=1) * np.linalg.norm(reference, axis=1) + 1e-12)
        result = evaluate(compute_distance_matrix(features_q, features_g), query, gallery, ranks=(1, 5, 10))
        return {"max_abs_diff": float(np.abs(features - reference).max()), "mean_cosine": float(cosine.mean()),
                "min_cosine": float(cosine.min()), **{k: float(result[k]) for k in ("rank1", "rank5", "rank10", "mAP")}}

    rows = {"keras": {**compare(keras_embedder), "size_mb": np.nan, "latency_ms": np.nan}}
    entries = {**({"saved_model": saved_model_dir} if saved_model_dir is not None else {}), **exported}
    for name, entry in entries.items():
        if isinstance(entry, Embedder):
            embedder, size = entry, np.nan
        else:
            path = pathlib.Path(entry)
            options = {"num_threads": num_threads} if path.suffix == ".tflite" else {}
            embedder, size = load_embedder(path, **options), _size_mb(path)
        rows[name] = {**compare(embedder), "size_mb": size, "latency_ms": latency_ms(embedder, pixels_q[:1])}
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


def _size_mb(path: pathlib.Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20
