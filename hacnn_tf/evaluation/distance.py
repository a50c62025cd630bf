"""Query-gallery distances, numerically equivalent to torchreid's `reid/metrics/distance.py`, whole or by blocks.

The evaluation from features (`evaluate_features`, `re_ranking_features`, `average_query_expansion`) never holds a
whole query x gallery matrix: it takes the distances from `distance_blocks`, one block of query rows at a time. Every
path computes a distance with the same code (`|a|^2 + |b|^2` summed before `- 2 a.b`, as in torchreid's `addmm_`),
so a row block equals the same rows of `compute_distance_matrix`, and `d(a, b)` equals `d(b, a)`, up to the
rounding of the BLAS's dot products: bit for bit where its matrix product gives a row the same bits whatever the
other rows (OpenBLAS's AVX-512 kernels on some CPUs do not: last-bit differences, 1e-4 at distances ~100 in
float32, were measured), which the k-reciprocal re-ranking's use of a row for its column tolerates.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np

__all__ = ["NonFiniteFeaturesError", "PreparedFeatures", "check_features", "compute_distance_matrix", "distance_blocks"]

Metric = Literal["euclidean", "cosine"]

# torch.nn.functional.normalize's default epsilon: vectors with a smaller norm are divided by it instead.
_NORMALIZE_EPS = 1e-12
# Rows of Euclidean norm sums added at a time.
_NORM_ROWS = 16


def compute_distance_matrix(
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    metric: Metric = "euclidean",
    chunk_size: int = 1024,
) -> np.ndarray:
    """Distances between every query row and every gallery row, shape `(num_query, num_gallery)`.

    `"euclidean"` is the SQUARED euclidean distance `|q|^2 + |g|^2 - 2 q.g` (no square root, as torchreid),
    `"cosine"` is `1 - q.g / (|q| |g|)`. The result is float64 when either input is float64, float32 otherwise.
    Queries are processed `chunk_size` rows at a time, so the temporaries stay bounded. Raises ValueError on
    non-finite features (NaN or infinity: no distance, hence no ranking, is defined for them).
    """
    query, gallery = check_features(query_features, gallery_features)
    distances = np.empty((query.shape[0], gallery.shape[0]), dtype=_result_dtype(query, gallery))
    for start, block in distance_blocks(query, gallery, metric, chunk_size, check=False):
        distances[start : start + block.shape[0]] = block
    return distances


def distance_blocks(
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    metric: Metric = "euclidean",
    block_size: int = 1024,
    check: bool = True,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yields `(start, distances[start : start + block_size])` for consecutive blocks of query rows.

    Each block is a `(rows, num_gallery)` array (float32 unless an input is float64) with the values
    `compute_distance_matrix` gives those rows; the matrix products run on all cores (numpy's BLAS). The blocks share
    one buffer (fresh pages cost more than the arithmetic here): use or copy a block before taking the next.
    """
    if check:
        query_features, gallery_features = check_features(query_features, gallery_features)
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    dtype = _result_dtype(query_features, gallery_features)
    query = PreparedFeatures(query_features, metric, dtype)
    gallery = PreparedFeatures(gallery_features, metric, dtype)

    def blocks() -> Iterator[tuple[int, np.ndarray]]:
        out = np.empty((min(block_size, len(query)), len(gallery)), dtype=dtype)
        for start in range(0, len(query), block_size):
            stop = min(start + block_size, len(query))
            yield start, query.distances(start, stop, gallery, out[: stop - start])

    return blocks()


class PreparedFeatures:
    """Features ready for `metric` distances: cast to `dtype` and, for cosine, L2-normalised (torch's epsilon);
    for euclidean, with their squared norms. Prepared once, then used block by block."""

    def __init__(self, features: np.ndarray, metric: Metric, dtype: type = np.float32) -> None:
        _check_metric(metric)
        self.metric = metric
        self.features = np.asarray(features).astype(dtype, copy=False)
        self.norms = np.einsum("ij,ij->i", self.features, self.features)
        if metric == "cosine":
            self.features = self.features / np.maximum(np.sqrt(self.norms), _NORMALIZE_EPS)[:, None]

    def __len__(self) -> int:
        return self.features.shape[0]

    def rows(self, start: int, stop: int) -> PreparedFeatures:
        """Rows `start:stop`, as prepared (a view: no copy, no second normalisation)."""
        part = object.__new__(PreparedFeatures)
        part.metric, part.features, part.norms = self.metric, self.features[start:stop], self.norms[start:stop]
        return part

    def distances(self, start: int, stop: int, other: PreparedFeatures, out: np.ndarray | None = None) -> np.ndarray:
        """Distances from rows `start:stop` of these features to every row of `other`, `(stop - start, len(other))`,
        written into `out` if given."""
        if self.metric == "cosine":
            out = np.matmul(self.features[start:stop], other.features.T, out=out)
            np.subtract(1, out, out=out)
            return out
        # (-2 a).b is -2 (a.b) bit for bit (a power of two commutes with rounding), without a pass over the block.
        out = np.matmul(-2 * self.features[start:stop], other.features.T, out=out)
        for row in range(0, stop - start, _NORM_ROWS):  # `|a|^2 + |b|^2` a few rows at a time: small temporaries
            rows = slice(start + row, min(start + row + _NORM_ROWS, stop))
            out[row : row + _NORM_ROWS] += np.add.outer(self.norms[rows], other.norms)
        return out

    def paired_distances(
        self, rows: np.ndarray, other: PreparedFeatures, other_rows: np.ndarray, chunk_size: int = 1 << 15
    ) -> np.ndarray:
        """`d(self[rows[i]], other[other_rows[i]])` for each i, shape `(len(rows),)`: the formula of `distances`,
        but the dot products are summed in another order, so a value may differ from the matrix entry in its
        last bits."""
        out = np.empty(rows.shape[0], dtype=self.features.dtype)
        for start in range(0, rows.shape[0], chunk_size):
            a, b = rows[start : start + chunk_size], other_rows[start : start + chunk_size]
            dots = np.einsum("ij,ij->i", self.features[a], other.features[b])
            if self.metric == "cosine":
                out[start : start + chunk_size] = 1 - dots
            else:
                out[start : start + chunk_size] = (self.norms[a] + other.norms[b]) - 2 * dots
        return out


class NonFiniteFeaturesError(ValueError):
    """Features holding NaN or infinity (a diverged model, a broken input): no distance, hence no ranking, exists."""


def check_features(query_features: np.ndarray, gallery_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two feature arrays as numpy arrays, after checking that they are 2-D, of one dimension, and finite.

    Non-finite features (a diverged model, a failed image) would otherwise give a meaningless ranking (NaN
    distances sort last): the error names the input and counts its non-finite rows."""
    query, gallery = np.asarray(query_features), np.asarray(gallery_features)
    if query.ndim != 2 or gallery.ndim != 2:
        raise ValueError(
            f"features must be 2-D (num_samples, feature_dim); got query {query.shape} and gallery {gallery.shape}"
        )
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(f"query and gallery feature dimensions differ: query {query.shape} vs gallery {gallery.shape}")
    for name, features in (("query", query), ("gallery", gallery)):
        bad_rows = np.count_nonzero(~np.isfinite(features).all(axis=1)) if features.size else 0
        if bad_rows:
            raise NonFiniteFeaturesError(
                f"{name} features hold non-finite values (NaN or inf) in {bad_rows} of {features.shape[0]} rows; "
                "a diverged model or a broken input gives such embeddings, and they cannot be ranked"
            )
    return query, gallery


def _check_metric(metric: str) -> None:
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"unknown distance metric {metric!r}; choose 'euclidean' or 'cosine'")


def _result_dtype(first: np.ndarray, second: np.ndarray) -> type:
    return np.float64 if np.float64 in (first.dtype, second.dtype) else np.float32
