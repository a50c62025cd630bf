"""Parity of exported models with the Keras model: embeddings, retrieval accuracy, size and latency."""

from __future__ import annotations

import os
import pathlib
import threading
import time
from typing import Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from hacnn_tf.data.pipeline import make_eval_dataset
from hacnn_tf.evaluation.distance import compute_distance_matrix
from hacnn_tf.evaluation.metrics import evaluate, write_results
from hacnn_tf.layers.preprocessing import model_inputs
from hacnn_tf.model import HACNN


class TFLiteEmbedder:
    """Runs a `.tflite` embedding model (from `convert_tflite`) with `ai_edge_litert`, one image at a time.

    Call with `(N, H, W, 3)` RGB pixels in 0..255; returns `(N, D)` float32. Safe to share between threads: a LiteRT
    interpreter has one set of input and output buffers, so each image's set-invoke-read runs under a lock (shared
    unlocked, 8 threads made most calls raise and others return another call's embedding). Calls through one embedder
    therefore run one at a time; for parallel throughput give each thread its own embedder (`num_threads` sets the
    interpreter's own threads). The `interpreter` attribute itself is not guarded: use it from one thread.
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = pathlib.Path(path)
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._lock = threading.Lock()

    def embed_one(self, image: np.ndarray) -> np.ndarray:
        """The `(D,)` embedding of one `(H, W, 3)` image."""
        batch = image[None].astype(self.input["dtype"], copy=False)
        with self._lock:
            self.interpreter.set_tensor(self.input["index"], batch)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output["index"])[0].astype(np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.stack([self.embed_one(image) for image in images])

    def latency_ms(self, image: np.ndarray, runs: int = 30, warmup: int = 5) -> float:
        """Median batch-1 latency in milliseconds."""
        for _ in range(warmup):
            self.embed_one(image)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.embed_one(image)
            times.append(time.perf_counter() - start)
        return 1000.0 * float(np.median(times))


def load_pixels(table: pd.DataFrame, input_size: Sequence[int], batch_size: int = 64) -> np.ndarray:
    """`(N, H, W, 3)` float32 pixels (0..255) of the table's images, decoded and resized as everywhere else."""
    return np.concatenate([batch.numpy() for batch in make_eval_dataset(table, input_size, batch_size,
                                                                        normalize=False)])


def _keras_embeddings(model: HACNN, pixels: np.ndarray, batch_size: int = 64) -> np.ndarray:
    embed = tf.function(lambda x: model(model_inputs(model, x), training=False))
    return np.concatenate([keras.ops.convert_to_numpy(embed(pixels[i:i + batch_size]))
                           for i in range(0, len(pixels), batch_size)])


def _saved_model_embeddings(saved_model_dir: str | os.PathLike, pixels: np.ndarray, batch_size: int = 64
                            ) -> np.ndarray:
    from hacnn_tf.export.saved_model import IMAGES_SIGNATURE, OUTPUT

    signature = tf.saved_model.load(str(saved_model_dir)).signatures[IMAGES_SIGNATURE]
    return np.concatenate([signature(images=tf.constant(pixels[i:i + batch_size]))[OUTPUT].numpy()
                           for i in range(0, len(pixels), batch_size)])


def parity_report(
    model: HACNN,
    tflite_paths: Mapping[str, str | os.PathLike],
    query: pd.DataFrame,
    gallery: pd.DataFrame,
    output: str | os.PathLike | None = None,
    saved_model_dir: str | os.PathLike | None = None,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """Compares exported models with the Keras model on the held-out query and gallery images.

    Rows: `keras` (the reference), `saved_model` (with `saved_model_dir`, its `embed_images` signature), then one per
    TFLite file. Columns: `max_abs_diff`, `mean_cosine`, `min_cosine` (embeddings against the Keras model's on the
    same pixels), `rank1`, `rank5`, `rank10`, `mAP` (Market-1501 protocol, fractions), `size_mb`, `latency_ms`
    (TFLite batch 1, median). Written to `<output>.csv` and `<output>.md` when `output` is given.
    """
    pixels_q = load_pixels(query, model.input_size)
    pixels_g = load_pixels(gallery, model.input_size)
    reference_q, reference_g = _keras_embeddings(model, pixels_q), _keras_embeddings(model, pixels_g)
    reference = np.concatenate([reference_q, reference_g])

    def compare(features_q, features_g):
        features = np.concatenate([features_q, features_g])
        cosine = np.sum(features * reference, axis=1) / (
            np.linalg.norm(features, axis=1) * np.linalg.norm(reference, axis=1) + 1e-12)
        result = evaluate(compute_distance_matrix(features_q, features_g), query, gallery, ranks=(1, 5, 10))
        return {"max_abs_diff": float(np.abs(features - reference).max()), "mean_cosine": float(cosine.mean()),
                "min_cosine": float(cosine.min()), **{k: float(result[k]) for k in ("rank1", "rank5", "rank10", "mAP")}}

    rows = {"keras": {**compare(reference_q, reference_g), "size_mb": np.nan, "latency_ms": np.nan}}
    if saved_model_dir is not None:
        rows["saved_model"] = {**compare(_saved_model_embeddings(saved_model_dir, pixels_q),
                                         _saved_model_embeddings(saved_model_dir, pixels_g)),
                               "size_mb": np.nan, "latency_ms": np.nan}
    for name, path in tflite_paths.items():
        embedder = TFLiteEmbedder(path, num_threads)
        rows[name] = {**compare(embedder(pixels_q), embedder(pixels_g)),
                      "size_mb": pathlib.Path(path).stat().st_size / 2**20,
                      "latency_ms": embedder.latency_ms(pixels_q[0])}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    if output is not None:
        write_results(table, output, float_format="{:.6g}")
    return table
