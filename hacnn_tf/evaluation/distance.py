"""Query-gallery distance matrices, numerically equivalent to torchreid's `reid/metrics/distance.py`."""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["compute_distance_matrix"]

Metric = Literal["euclidean", "cosine"]

# torch.nn.functional.normalize's default epsilon: vectors with a smaller norm are divided by it instead.
_NORMALIZE_EPS = 1e-12


def compute_distance_matrix(
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    metric: Metric = "euclidean",
    chunk_size: int = 1024,
) -> np.ndarray:
    """Distances between every query row and every gallery row, shape `(num_query, num_gallery)`.

    `"euclidean"` is the SQUARED euclidean distance `|q|^2 + |g|^2 - 2 q.g` (no square root, as torchreid),
    `"cosine"` is `1 - q.g / (|q| |g|)`. The result is float64 when either input is float64, float32 otherwise.
    Queries are processed `chunk_size` rows at a time, so the temporaries stay bounded.
    """
    query = np.asarray(query_features)
    gallery = np.asarray(gallery_features)
    if query.ndim != 2 or gallery.ndim != 2:
        raise ValueError(
            f"features must be 2-D (num_samples, feature_dim); got query {query.shape} and gallery {gallery.shape}"
        )
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query and gallery feature dimensions differ: query {query.shape} vs gallery {gallery.shape}"
        )
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"unknown distance metric {metric!r}; choose 'euclidean' or 'cosine'")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")

    dtype = np.float64 if np.float64 in (query.dtype, gallery.dtype) else np.float32
    query = query.astype(dtype, copy=False)
    gallery = gallery.astype(dtype, copy=False)
    if metric == "cosine":
        query = _l2_normalize(query)
        gallery = _l2_normalize(gallery)
    else:
        gallery_sq_norms = np.einsum("ij,ij->i", gallery, gallery)

    distances = np.empty((query.shape[0], gallery.shape[0]), dtype=dtype)
    for start in range(0, query.shape[0], chunk_size):
        block = query[start : start + chunk_size]
        out = distances[start : start + chunk_size]
        np.matmul(block, gallery.T, out=out)
        if metric == "cosine":
            np.subtract(1, out, out=out)
        else:
            out *= -2
            out += np.einsum("ij,ij->i", block, block)[:, None]
            out += gallery_sq_norms[None, :]
    return distances


def _l2_normalize(features: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", features, features))
    return features / np.maximum(norms, _NORMALIZE_EPS)[:, None]
