"""The evaluation from features (blocks of distances, re-ranking and query expansion without N x N matrices) against
torchreid's `eval_market1501` / `re_ranking` on the dense matrices, at small and at Market-1501 sizes."""

from __future__ import annotations

import tracemalloc
import types

import numpy as np
import pytest

from hacnn_tf.evaluation import (
    average_query_expansion,
    compute_distance_matrix,
    evaluate_features,
    evaluate_rank,
    re_ranking,
    re_ranking_features,
)
from hacnn_tf.evaluation.distance import distance_blocks


def _clustered(
    seed: int,
    num_q: int,
    num_g: int,
    dim: int = 16,
    num_ids: int = 30,
    num_cams: int = 4,
    noise: float = 0.8,
    dtype: type = np.float32,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Noisy copies of identity centres (tie-free); the first three query identities are absent from the gallery."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids + 3, dim))
    q_pids = rng.integers(0, num_ids, num_q)
    q_pids[:3] = num_ids + np.arange(3)
    g_pids = rng.integers(0, num_ids, num_g)
    query = (centres[q_pids] + noise * rng.standard_normal((num_q, dim))).astype(dtype)
    gallery = (centres[g_pids] + noise * rng.standard_normal((num_g, dim))).astype(dtype)
    ids = (q_pids, g_pids, rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g))
    return query, gallery, ids


def _dense_distances(query: np.ndarray, gallery: np.ndarray, metric: str) -> tuple[np.ndarray, ...]:
    return tuple(
        compute_distance_matrix(a, b, metric) for a, b in [(query, gallery), (query, query), (gallery, gallery)]
    )


@pytest.mark.parametrize(
    ("metric", "dtype", "block_size"),
    [("euclidean", np.float32, 7), ("cosine", np.float32, 64), ("euclidean", np.float64, 1000)],
)
def test_matches_torchreid_on_the_dense_matrix(
    torchreid_rank: types.ModuleType, metric: str, dtype: type, block_size: int
) -> None:
    query, gallery, ids = _clustered(0, 60, 400, dtype=dtype)
    expected_cmc, expected_map = torchreid_rank.eval_market1501(
        compute_distance_matrix(query, gallery, metric), *ids, 50
    )
    cmc, mean_ap = evaluate_features(query, gallery, *ids, metric=metric, block_size=block_size)
    np.testing.assert_allclose(cmc, expected_cmc, rtol=0, atol=1e-6)
    assert mean_ap == pytest.approx(expected_map, abs=1e-6)
    assert 0.1 < mean_ap < 0.9


def test_market_sized_features(torchreid_rank: types.ModuleType) -> None:
    """3,368 x 15,913, as Market-1501: equal to the dense path on the whole problem, and to torchreid on the rows
    of 150 queries (torchreid's Python loop takes a minute for all of them)."""
    query, gallery, ids = _clustered(1, 3368, 15913, dim=32, num_ids=750, num_cams=6, noise=1.0)
    cmc, mean_ap, mean_inp = evaluate_features(query, gallery, *ids, return_minp=True)
    distmat = compute_distance_matrix(query, gallery)
    dense_cmc, dense_map, dense_inp = evaluate_rank(distmat, *ids, return_minp=True)
    np.testing.assert_array_equal(cmc, dense_cmc)
    assert (mean_ap, mean_inp) == pytest.approx((dense_map, dense_inp), abs=1e-12)
    assert 0.2 < mean_ap < 0.9

    rows = np.random.default_rng(0).choice(3368, 150, replace=False)
    q_pids, g_pids, q_camids, g_camids = ids
    subset = (q_pids[rows], g_pids, q_camids[rows], g_camids)
    expected_cmc, expected_map = torchreid_rank.eval_market1501(distmat[rows], *subset, 50)
    cmc, mean_ap = evaluate_features(query[rows], gallery, *subset)
    np.testing.assert_allclose(cmc, expected_cmc, rtol=0, atol=1e-6)
    assert mean_ap == pytest.approx(expected_map, abs=1e-6)


def test_feature_blocks_equal_the_matrix_to_its_rounding() -> None:
    """The re-ranking relies on it: a block of rows is the matrix's rows, and d(a, b) == d(b, a), to the float32
    rounding of the dot products (|a|^2 + |b|^2 ~ 128 here, whose float32 unit in the last place is 1.5e-5: a
    64-term dot product summed in another order differs by up to ~10 of them, 7 measured; bit for bit where the
    BLAS's product of a row does not depend on the other rows)."""
    features = np.random.default_rng(2).standard_normal((700, 64)).astype(np.float32)
    for metric, atol in (("euclidean", 3e-4), ("cosine", 1e-6)):
        full = compute_distance_matrix(features, features, metric)
        blocks = np.concatenate([block.copy() for _, block in distance_blocks(features, features, metric, 97)])
        np.testing.assert_allclose(blocks, full, rtol=0, atol=atol)
        np.testing.assert_allclose(full, full.T, rtol=0, atol=atol)


@pytest.mark.parametrize(
    ("seed", "num_q", "num_g", "k1", "k2", "lambda_value", "metric", "dtype"),
    [
        (0, 50, 300, 20, 6, 0.3, "euclidean", np.float32),
        (1, 40, 150, 20, 6, 0.3, "cosine", np.float32),
        (2, 30, 120, 7, 3, 0.5, "euclidean", np.float64),  # odd k1: k1 / 2 rounds half to even
        (3, 25, 80, 5, 1, 0.0, "cosine", np.float32),  # k2 == 1: no query expansion; pure Jaccard distance
        (4, 10, 30, 30, 60, 1.0, "euclidean", np.float32),  # neighbourhoods larger than the 40 samples
    ],
)
def test_re_ranking_features_matches_torchreid(
    torchreid_rerank: types.ModuleType,
    seed: int,
    num_q: int,
    num_g: int,
    k1: int,
    k2: int,
    lambda_value: float,
    metric: str,
    dtype: type,
) -> None:
    query, gallery, _ = _clustered(seed, num_q, num_g, num_ids=12, dtype=dtype)
    expected = torchreid_rerank.re_ranking(
        *_dense_distances(query, gallery, metric), k1=k1, k2=k2, lambda_value=lambda_value
    )
    actual = re_ranking_features(query, gallery, metric, k1=k1, k2=k2, lambda_value=lambda_value, block_size=16)
    assert actual.dtype == np.float32 and actual.shape == (num_q, num_g)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


def test_reranked_evaluation_matches_torchreid(
    torchreid_rank: types.ModuleType, torchreid_rerank: types.ModuleType
) -> None:
    query, gallery, ids = _clustered(5, 60, 400, num_ids=25, noise=1.1)
    distmat = torchreid_rerank.re_ranking(*_dense_distances(query, gallery, "euclidean"))
    expected_cmc, expected_map = torchreid_rank.eval_market1501(distmat, *ids, 50)
    cmc, mean_ap = evaluate_features(query, gallery, *ids, rerank=True, block_size=50)
    np.testing.assert_allclose(cmc, expected_cmc, rtol=0, atol=1e-6)
    assert mean_ap == pytest.approx(expected_map, abs=1e-6)
    plain_map = evaluate_features(query, gallery, *ids)[1]
    assert mean_ap != pytest.approx(plain_map, abs=1e-3)  # re-ranking changed the ranking


@pytest.mark.slow
def test_market_sized_re_ranking_equals_the_dense_one() -> None:
    """19,281 samples: the features path (no N x N matrix) against `re_ranking` of the three dense matrices, which
    the tests above and tests/evaluation/test_rerank.py hold to torchreid."""
    query, gallery, ids = _clustered(6, 3368, 15913, dim=8, num_ids=750, num_cams=6, noise=0.6)
    dense = re_ranking(*_dense_distances(query, gallery, "euclidean"))
    reranked = re_ranking_features(query, gallery)
    np.testing.assert_allclose(reranked, dense, rtol=0, atol=1e-5)
    cmc, mean_ap = evaluate_rank(reranked, *ids)
    dense_cmc, dense_map = evaluate_rank(dense, *ids)
    np.testing.assert_allclose(cmc, dense_cmc, rtol=0, atol=1e-6)
    assert mean_ap == pytest.approx(dense_map, abs=1e-6)


def test_memory_grows_with_the_samples_not_their_square() -> None:
    """12,000 samples: one N x N float32 matrix would be 576 MB, and the dense path holds several; the re-ranked,
    query-expanded evaluation stays below 40 % of one (numpy reports its allocations to tracemalloc)."""
    query, gallery, ids = _clustered(7, 2000, 10000, dim=8, num_ids=400)
    tracemalloc.start()
    try:
        evaluate_features(query, gallery, *ids, rerank=True, aqe=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.4 * 12000**2 * 4, f"peak {peak / 1e6:.0f} MB"


def _aqe_by_definition(query: np.ndarray, gallery: np.ndarray, k: int, alpha: float, times: int):
    """fast-reid's `aqe` with a dense similarity matrix: mean of the k most similar features (itself included),
    weighted by similarity ** alpha, over query and gallery together."""
    features = np.concatenate([query, gallery]).astype(np.float64)
    for _ in range(times):
        normalised = features / np.linalg.norm(features, axis=1, keepdims=True)
        similarities = normalised @ normalised.T
        nearest = np.argpartition(-similarities, k - 1, axis=1)[:, :k]  # the set is what matters: a mean
        weights = np.take_along_axis(similarities, nearest, axis=1) ** alpha
        features = (features[nearest] * weights[..., None]).mean(axis=1)
    return features[: len(query)], features[len(query) :]


@pytest.mark.slow
@pytest.mark.parametrize(("k", "alpha", "times", "dtype"), [(10, 3.0, 1, np.float32), (4, 1.0, 2, np.float64)])
def test_average_query_expansion_matches_its_definition(k: int, alpha: float, times: int, dtype: type) -> None:
    """9,040 samples, so the float32 neighbour selection takes its sampled-bound path. A second expansion draws the
    features so close together that float32 rounding reorders near-tied neighbours: that case runs in float64."""
    query, gallery, _ = _clustered(8, 40, 9000, num_ids=20, dtype=dtype)
    expected = _aqe_by_definition(query, gallery, k, alpha, times)
    actual = average_query_expansion(query, gallery, k=k, alpha=alpha, times=times, block_size=1000)
    for got, want in zip(actual, expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_query_expansion_with_one_neighbour_changes_nothing() -> None:
    """A sample's most similar sample is itself, with similarity 1."""
    query, gallery, _ = _clustered(8, 30, 200)
    for got, original in zip(average_query_expansion(query, gallery, k=1, alpha=3.0), (query, gallery)):
        np.testing.assert_allclose(got, original, rtol=1e-6)


def test_query_expansion_before_ranking(torchreid_rank: types.ModuleType) -> None:
    query, gallery, ids = _clustered(9, 60, 400, num_ids=25, noise=1.2)
    expanded = average_query_expansion(query, gallery)
    expected_cmc, expected_map = torchreid_rank.eval_market1501(compute_distance_matrix(*expanded, "cosine"), *ids, 50)
    cmc, mean_ap = evaluate_features(query, gallery, *ids, metric="cosine", aqe=True)
    np.testing.assert_allclose(cmc, expected_cmc, rtol=0, atol=1e-6)
    assert mean_ap == pytest.approx(expected_map, abs=1e-6)
    assert mean_ap > evaluate_features(query, gallery, *ids, metric="cosine")[1]  # clustered data: AQE helps


@pytest.mark.parametrize("which", ["query", "gallery"])
@pytest.mark.parametrize(
    "entry", ["evaluate_features", "re_ranking_features", "compute_distance_matrix", "average_query_expansion"]
)
def test_non_finite_features_are_refused(which: str, entry: str) -> None:
    query, gallery, ids = _clustered(10, 20, 50)
    broken = query if which == "query" else gallery
    broken[[2, 5], 3] = np.nan
    broken[7, 0] = np.inf
    calls = {
        "evaluate_features": lambda: evaluate_features(query, gallery, *ids),
        "re_ranking_features": lambda: re_ranking_features(query, gallery),
        "compute_distance_matrix": lambda: compute_distance_matrix(query, gallery),
        "average_query_expansion": lambda: average_query_expansion(query, gallery),
    }
    total = len(broken)
    with pytest.raises(ValueError, match=rf"{which} features hold non-finite values \(NaN or inf\) in 3 of {total}"):
        calls[entry]()
