"""re_ranking against torchreid's `reid/utils/rerank.py` on the same distance matrices."""

from __future__ import annotations

import types

import numpy as np
import pytest

from hacnn_tf.evaluation import compute_distance_matrix, re_ranking


def _clustered_distances(seed: int, num_q: int, num_g: int, squared: bool = True) -> tuple[np.ndarray, ...]:
    """Distances between noisy copies of a few centres, so k-reciprocal sets are large and overlap (tie-free)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((12, 16))
    query = (centres[rng.integers(0, 12, num_q)] + 0.6 * rng.standard_normal((num_q, 16))).astype(np.float32)
    gallery = (centres[rng.integers(0, 12, num_g)] + 0.6 * rng.standard_normal((num_g, 16))).astype(np.float32)
    pairs = [(query, gallery), (query, query), (gallery, gallery)]
    dists = [compute_distance_matrix(a, b) for a, b in pairs]
    return tuple(d if squared else np.sqrt(np.maximum(d, 0)) for d in dists)


@pytest.mark.parametrize(
    ("seed", "num_q", "num_g", "k1", "k2", "lambda_value", "squared"),
    [
        (0, 50, 300, 20, 6, 0.3, True),
        (1, 40, 150, 20, 6, 0.3, False),
        (2, 30, 120, 7, 3, 0.5, True),  # odd k1: k1 / 2 rounds half to even
        (3, 25, 80, 5, 1, 0.0, False),  # k2 == 1: no query expansion; pure Jaccard distance
        (4, 10, 30, 30, 60, 1.0, True),  # neighbourhoods larger than the 40 samples
    ],
)
def test_matches_torchreid(
    torchreid_rerank: types.ModuleType,
    seed: int,
    num_q: int,
    num_g: int,
    k1: int,
    k2: int,
    lambda_value: float,
    squared: bool,
) -> None:
    q_g, q_q, g_g = _clustered_distances(seed, num_q, num_g, squared)
    expected = torchreid_rerank.re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lambda_value)
    actual = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lambda_value, chunk_size=16)
    assert actual.dtype == np.float32 and actual.shape == (num_q, num_g)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)
    if lambda_value < 1:  # non-degenerate: re-ranking reorders some top-5 lists
        assert np.any(np.argsort(actual, axis=1)[:, :5] != np.argsort(q_g, axis=1)[:, :5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torchreid_on_arbitrary_matrices(torchreid_rerank: types.ModuleType, dtype: type) -> None:
    """Uniform random, non-symmetric matrices: exercises which side the per-sample normalisation is taken on."""
    rng = np.random.default_rng(5)
    q_g, q_q, g_g = (rng.random(shape).astype(dtype) for shape in [(30, 90), (30, 30), (90, 90)])
    expected = torchreid_rerank.re_ranking(q_g, q_q, g_g)
    np.testing.assert_allclose(re_ranking(q_g, q_q, g_g), expected, rtol=0, atol=1e-5)


def test_chunking_does_not_change_the_result() -> None:
    q_g, q_q, g_g = _clustered_distances(6, 20, 70)
    np.testing.assert_array_equal(re_ranking(q_g, q_q, g_g, chunk_size=3), re_ranking(q_g, q_q, g_g))


@pytest.mark.parametrize(
    ("shapes", "kwargs", "message"),
    [
        ([(4, 6), (4, 4), (5, 5)], {}, r"g_g_dist of shape \(6, 6\)"),
        ([(4, 6), (6, 6), (6, 6)], {}, r"q_q_dist of shape \(4, 4\)"),
        ([(4,), (4, 4), (5, 5)], {}, "must be 2-D"),
        ([(4, 6), (4, 4), (6, 6)], {"k2": 0}, "k2 >= 1"),
        ([(4, 6), (4, 4), (6, 6)], {"lambda_value": 1.5}, "lambda_value"),
    ],
)
def test_rejects_bad_arguments(shapes: list, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        re_ranking(*(np.ones(shape) for shape in shapes), **kwargs)
