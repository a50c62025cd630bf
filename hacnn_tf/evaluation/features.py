"""Embedding extraction and the re-id evaluation of a model on a query/gallery split (TensorFlow side)."""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from hacnn_tf.data.pipeline import make_eval_dataset
from hacnn_tf.evaluation.distance import compute_distance_matrix
from hacnn_tf.evaluation.metrics import evaluate
from hacnn_tf.evaluation.rerank import re_ranking


def extract_features(model: keras.Model, table: pd.DataFrame, batch_size: int = 64, flip: bool = False) -> np.ndarray:
    """Inference embeddings `(len(table), D)` of the images of `table`, in row order.

    With `flip`, the embedding is the mean of the image's and its mirror image's (test-time augmentation). A model
    that normalises its input itself (`include_preprocessing`) gets the pixels in 0..255, others normalised ones.
    """
    normalize = not getattr(model, "include_preprocessing", False)
    dataset = make_eval_dataset(table, model.input_size, batch_size, normalize=normalize)
    height, width = model.input_size
    embed = tf.function(lambda images: model(images, training=False),
                        input_signature=[tf.TensorSpec((None, height, width, 3), tf.float32)])
    chunks = []
    for images in dataset:
        features = embed(images)
        if flip:
            features = 0.5 * (features + embed(tf.reverse(images, axis=[2])))
        chunks.append(features.numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, model.embedding_dim), "float32")


def evaluate_model(
    model: keras.Model,
    query: pd.DataFrame,
    gallery: pd.DataFrame,
    metric: str = "euclidean",
    rerank: bool = False,
    flip: bool = False,
    ranks: Sequence[int] = (1, 5, 10, 20),
    batch_size: int = 64,
    use_metric_cuhk03: bool = False,
) -> dict[str, float | np.ndarray]:
    """Embeds query and gallery, ranks by `metric` distance (optionally k-reciprocal re-ranked), returns
    `{"mAP", "rank1", ..., "cmc"}` under the Market-1501 protocol (or CUHK03's classic one)."""
    distmat = query_gallery_distances(model, query, gallery, metric=metric, rerank=rerank, flip=flip,
                                      batch_size=batch_size)
    return evaluate(distmat, query, gallery, ranks=ranks, use_metric_cuhk03=use_metric_cuhk03, seed=0)


def query_gallery_distances(
    model: keras.Model,
    query: pd.DataFrame,
    gallery: pd.DataFrame,
    metric: str = "euclidean",
    rerank: bool = False,
    flip: bool = False,
    batch_size: int = 64,
) -> np.ndarray:
    """The `(len(query), len(gallery))` `metric` distances between the model's embeddings of the two tables'
    images, optionally k-reciprocal re-ranked: the matrix `evaluate_model` ranks."""
    # One pass over both tables: one pipeline and one trace instead of two (inference embeds images independently).
    both = pd.concat([query[["path"]], gallery[["path"]]], ignore_index=True)
    features = extract_features(model, both, batch_size, flip)
    query_features, gallery_features = features[: len(query)], features[len(query):]
    distmat = compute_distance_matrix(query_features, gallery_features, metric)
    if rerank:
        distmat = re_ranking(
            distmat,
            compute_distance_matrix(query_features, query_features, metric),
            compute_distance_matrix(gallery_features, gallery_features, metric),
        )
    return distmat
