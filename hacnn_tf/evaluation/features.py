"""Embedding extraction and the re-id evaluation of a model on a query/gallery split (TensorFlow side)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from hacnn_tf.data.pipeline import make_eval_dataset
from hacnn_tf.evaluation.distance import compute_distance_matrix
from hacnn_tf.evaluation.metrics import evaluate_from_features
from hacnn_tf.evaluation.rerank import re_ranking_features
from hacnn_tf.progress import Progress


def extract_features(
    model: keras.Model, table: pd.DataFrame, batch_size: int = 64, flip: bool = False, progress: bool | None = None
) -> np.ndarray:
    """Inference embeddings `(len(table), D)` of the images of `table`, in row order.

    With `flip`, the embedding is the mean of the image's and its mirror image's (test-time augmentation). A model
    that normalises its input itself (its `include_preprocessing`, which `HACNNReID` declares) gets the pixels in
    0..255, others normalised ones.
    The count of images embedded is shown as `hacnn_tf.progress.Progress` does (`progress` is its `enabled`).
    """
    normalize = not model.include_preprocessing
    dataset = make_eval_dataset(table, model.input_size, batch_size, normalize=normalize)
    height, width = model.input_size
    embed = tf.function(
        lambda images: model(images, training=False)["embedding"],
        input_signature=[tf.TensorSpec((None, height, width, 3), tf.float32)],
    )
    chunks = []
    with Progress(f"embedding {len(table):,} images", total=len(table), unit="images", enabled=progress) as shown:
        for images in dataset:
            features = embed(images)
            if flip:
                features = 0.5 * (features + embed(tf.reverse(images, axis=[2])))
            chunks.append(features.numpy())
            shown.advance(len(chunks[-1]))
    return np.concatenate(chunks) if chunks else np.zeros((0, model.embedding_dim), "float32")


def embed_query_gallery(
    model: keras.Model, query: pd.DataFrame, gallery: pd.DataFrame, batch_size: int = 64, flip: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """`extract_features` of both tables in one pass (one pipeline and one trace instead of two: inference embeds
    images independently): `(len(query), D)` and `(len(gallery), D)`."""
    both = pd.concat([query[["path"]], gallery[["path"]]], ignore_index=True)
    features = extract_features(model, both, batch_size, flip)
    return features[: len(query)], features[len(query) :]


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
    aqe: bool = False,
) -> dict[str, float | np.ndarray]:
    """Embeds query and gallery, ranks by `metric` distance (optionally after average query expansion and with
    k-reciprocal re-ranking) from the features, block by block; returns `{"mAP", "mINP", "rank1", ..., "cmc"}`
    under the Market-1501 protocol (or CUHK03's classic one)."""
    query_features, gallery_features = embed_query_gallery(model, query, gallery, batch_size, flip)
    return evaluate_from_features(
        query_features,
        gallery_features,
        query,
        gallery,
        ranks=ranks,
        metric=metric,
        rerank=rerank,
        aqe=aqe,
        use_metric_cuhk03=use_metric_cuhk03,
        seed=0,
    )


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
    images, optionally k-reciprocal re-ranked (from the features: no N x N matrix), as a dense matrix (figures)."""
    query_features, gallery_features = embed_query_gallery(model, query, gallery, batch_size, flip)
    if rerank:
        return re_ranking_features(query_features, gallery_features, metric)
    return compute_distance_matrix(query_features, gallery_features, metric)
