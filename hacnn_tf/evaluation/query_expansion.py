"""Average query expansion (Chum et al., "Total Recall", ICCV 2007) with the similarity weights of alpha-QE
(Radenovic, Tolias, Chum, "Fine-tuning CNN Image Retrieval with No Human Annotation", TPAMI 2019), as fast-reid's
`aqe` applies it to re-id features before ranking."""

from __future__ import annotations

import numpy as np

from hacnn_tf.evaluation._blocks import map_row_ranges, rows_per_block, smallest_k
from hacnn_tf.evaluation.distance import PreparedFeatures, check_features

__all__ = ["average_query_expansion"]


def average_query_expansion(
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    k: int = 10,
    alpha: float = 3.0,
    times: int = 1,
    block_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Expanded `(num_query, D)` and `(num_gallery, D)` features.

    Over all N = num_query + num_gallery samples, each feature is replaced by the mean of its `k` most cosine-similar
    samples' features (itself included) weighted by `similarity ** alpha`, `times` times: fast-reid's `aqe(query,
    gallery, qe_times, qe_k, alpha)`. The results are not normalised (fast-reid ranks them with its configured
    metric). The similarities are computed `block_size` rows at a time: memory O(N D), not O(N^2)."""
    query, gallery = check_features(query_features, gallery_features)
    if k < 1 or times < 0:
        raise ValueError(f"need k >= 1 and times >= 0, got k={k} and times={times}")
    features = np.concatenate([query, gallery])
    dtype = np.float64 if features.dtype == np.float64 else np.float32
    features = features.astype(dtype, copy=False)
    num_all = features.shape[0]
    k = min(k, num_all)
    block_size = block_size or rows_per_block(num_all)
    buffer = np.empty((min(block_size, num_all), num_all), dtype=dtype)  # reused: fresh pages are slow to touch
    for _ in range(times):
        normalised = PreparedFeatures(features, "cosine", dtype).features
        expanded = np.empty_like(features)
        for start in range(0, num_all, block_size):
            stop = min(start + block_size, num_all)
            similarities = np.matmul(normalised[start:stop], normalised.T, out=buffer[: stop - start])

            def expand(
                a: int,
                b: int,
                start: int = start,
                similarities: np.ndarray = similarities,
                source: np.ndarray = features,
                target: np.ndarray = expanded,
            ) -> None:
                nearest = smallest_k(similarities[a:b], k, largest=True)
                weights = np.power(np.take_along_axis(similarities[a:b], nearest, axis=1), alpha)
                target[start + a : start + b] = np.einsum("rk,rkd->rd", weights, source[nearest]) / k

            map_row_ranges(expand, 0, stop - start)
        features = expanded
    return features[: query.shape[0]], features[query.shape[0] :]
