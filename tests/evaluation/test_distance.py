"""compute_distance_matrix against torchreid's `reid/metrics/distance.py` (run with torch)."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from conftest import load_torchreid_module

from hacnn_tf.evaluation import compute_distance_matrix


@pytest.fixture(scope="module")
def torchreid_distance() -> types.ModuleType:
    return load_torchreid_module("reid/metrics/distance.py")


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_torchreid(torchreid_distance: types.ModuleType, metric: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    query = rng.standard_normal((37, 64)).astype(np.float32)
    gallery = rng.standard_normal((101, 64)).astype(np.float32)
    gallery[5] = 0.0  # a zero vector: cosine relies on torch's normalisation epsilon
    expected = torchreid_distance.compute_distance_matrix(
        torch.from_numpy(query), torch.from_numpy(gallery), metric=metric
    ).numpy()
    actual = compute_distance_matrix(query, gallery, metric=metric, chunk_size=8)
    assert actual.dtype == np.float32 and actual.shape == (37, 101)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)


def test_euclidean_is_squared_and_cosine_is_one_minus_similarity() -> None:
    query = np.array([[3.0, 4.0]])
    gallery = np.array([[0.0, 0.0], [3.0, 4.0], [-3.0, -4.0], [4.0, -3.0]])
    np.testing.assert_allclose(compute_distance_matrix(query, gallery), [[25.0, 0.0, 100.0, 50.0]])
    np.testing.assert_allclose(compute_distance_matrix(query, gallery, "cosine"), [[1.0, 0.0, 2.0, 1.0]])


def test_dtype_and_chunking_are_consistent() -> None:
    rng = np.random.default_rng(2)
    query, gallery = rng.standard_normal((20, 8)), rng.standard_normal((30, 8))
    full = compute_distance_matrix(query, gallery)
    assert full.dtype == np.float64
    # Bit for bit where the BLAS's product of a row does not depend on the other rows; to its rounding otherwise.
    np.testing.assert_allclose(compute_distance_matrix(query, gallery, chunk_size=3), full, rtol=1e-14, atol=1e-13)
    assert compute_distance_matrix(query.astype(np.float32), gallery.astype(np.float16)).dtype == np.float32


@pytest.mark.parametrize(
    ("query_shape", "gallery_shape", "message"),
    [((4, 8), (5, 9), r"\(4, 8\) vs gallery \(5, 9\)"), ((8,), (5, 8), "must be 2-D"), ((2, 4, 8), (5, 8), "2-D")],
)
def test_rejects_bad_shapes(query_shape: tuple, gallery_shape: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_distance_matrix(np.zeros(query_shape), np.zeros(gallery_shape))


def test_rejects_unknown_metric() -> None:
    with pytest.raises(ValueError, match="unknown distance metric"):
        compute_distance_matrix(np.zeros((2, 3)), np.zeros((2, 3)), metric="manhattan")
