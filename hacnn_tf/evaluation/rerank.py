"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), vectorised; same output as torchreid's `reid/utils/rerank.py`.

The encoding matrix V (a few dozen non-zeros per row) is kept sparse as sorted COO arrays (row-major keys), so the
query expansion and the Jaccard distance cost time proportional to the non-zeros instead of a Python loop per sample.
Only the pairwise distance matrix of all samples is dense, as in the reference.
"""

from __future__ import annotations

import concurrent.futures
import os

import numpy as np

__all__ = ["re_ranking"]

# Upper bound on the (query entry, gallery entry) pairs expanded at once in the Jaccard step (~20 bytes each).
_PAIR_BUDGET = 1 << 23


def re_ranking(
    q_g_dist: np.ndarray,
    q_q_dist: np.ndarray,
    g_g_dist: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Re-ranked query x gallery distances (float32), from query-gallery, query-query and gallery-gallery distances.

    The distances are squared and each sample's row normalised by its maximum, as in torchreid. With exactly tied
    distances at the k-th neighbour the neighbour sets, and hence the result, may differ from torchreid's (which
    depends on the order numpy's unstable sort puts ties in).
    """
    q_g_dist, q_q_dist, g_g_dist = (np.asarray(d) for d in (q_g_dist, q_q_dist, g_g_dist))
    if q_g_dist.ndim != 2:
        raise ValueError(f"q_g_dist must be 2-D (num_query, num_gallery), got shape {q_g_dist.shape}")
    num_q, num_g = q_g_dist.shape
    if q_q_dist.shape != (num_q, num_q) or g_g_dist.shape != (num_g, num_g):
        raise ValueError(
            f"expected q_q_dist of shape {(num_q, num_q)} and g_g_dist of shape {(num_g, num_g)} for q_g_dist "
            f"{q_g_dist.shape}, got {q_q_dist.shape} and {g_g_dist.shape}"
        )
    if k1 < 1 or k2 < 1 or not 0 <= lambda_value <= 1 or chunk_size < 1:
        raise ValueError(
            f"need k1 >= 1, k2 >= 1, 0 <= lambda_value <= 1 and chunk_size >= 1; got k1={k1}, k2={k2}, "
            f"lambda_value={lambda_value}, chunk_size={chunk_size}"
        )

    num_all = num_q + num_g
    k_half = int(np.around(k1 / 2.0))
    dist, neighbours = _distances_and_neighbours(q_g_dist, q_q_dist, g_g_dist, max(k1 + 1, k2), chunk_size)
    rows, cols = _expanded_k_reciprocal_sets(neighbours, k1 + 1, k_half + 1, chunk_size)
    weights = np.exp(-dist[rows, cols])
    row_sums = np.bincount(rows, weights=weights, minlength=num_all).astype(np.float32)
    values = weights / row_sums[rows]
    if k2 != 1:
        rows, cols, values = _query_expansion(rows, cols, values, neighbours[:, :k2], num_all)

    overlap = _sum_of_minima(rows, cols, values, num_q, num_all)
    jaccard = 1 - overlap / (2.0 - overlap)
    return jaccard * (1 - lambda_value) + dist[:num_q, num_q:] * lambda_value


def _distances_and_neighbours(q_g_dist: np.ndarray, q_q_dist: np.ndarray, g_g_dist: np.ndarray, k: int,
                              chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """torchreid's normalised distance matrix of all samples, and the `k` nearest samples of each row.

    With `squared = [[q_q, q_g], [q_g^T, g_g]] ** 2` (float32), row `i` of the result holds column `i` of `squared`
    divided by that column's maximum: torchreid's `(squared / squared.max(axis=0)).T`, bit for bit. It is written
    row block by row block straight from the three inputs (column blocks of them, transposed in cache-sized pieces)
    instead of assembling, squaring, dividing and transposing the whole matrix (four passes over 1.5 GB at Market
    size, and a cache-hostile transpose); each block's neighbours are found while it is in cache, on all cores
    (numpy releases the GIL in these loops).
    """
    num_q, num_g = q_g_dist.shape
    num_all = num_q + num_g
    k = min(k, num_all)

    def abs_max(d: np.ndarray, axis: int) -> np.ndarray:
        return np.maximum(d.max(axis=axis), -d.min(axis=axis))

    # max of the squares = square of the largest magnitude (rounding is monotonic), without squaring everything.
    magnitude = np.concatenate([np.maximum(abs_max(q_q_dist, 0), abs_max(q_g_dist, 1)),
                                np.maximum(abs_max(q_g_dist, 0), abs_max(g_g_dist, 0))])
    column_max = np.square(magnitude).astype(np.float32)
    dist = np.empty((num_all, num_all), dtype=np.float32)
    neighbours = np.empty((num_all, k), dtype=np.int64)

    def fill(start: int) -> None:
        stop = min(start + chunk_size, num_all)
        block = dist[start:stop]
        if start < num_q:  # rows of query samples: columns [q_q[:, i]; q_g[i, :]] of `squared`
            q_stop = min(stop, num_q)
            block[: q_stop - start, :num_q] = np.square(q_q_dist[:, start:q_stop].T)
            block[: q_stop - start, num_q:] = np.square(q_g_dist[start:q_stop])
        if stop > num_q:  # rows of gallery samples: columns [q_g[:, j]; g_g[:, j]]
            g_start, g_stop = max(start, num_q) - num_q, stop - num_q
            rows = block[g_start + num_q - start :]
            rows[:, :num_q] = np.square(q_g_dist[:, g_start:g_stop].T)
            rows[:, num_q:] = np.square(g_g_dist[:, g_start:g_stop].T)
        block /= column_max[start:stop, None]
        nearest = np.argpartition(block, k - 1, axis=1)[:, :k] if k < num_all else np.argsort(block, axis=1)
        nearest_dist = np.take_along_axis(block, nearest, axis=1)
        neighbours[start:stop] = np.take_along_axis(nearest, np.argsort(nearest_dist, axis=1), axis=1)

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(fill, range(0, num_all, chunk_size)))
    return dist, neighbours


def _reciprocal_mask(neighbours: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """mask[r, a]: sample `rows[r]` is itself among the neighbours of its neighbour `neighbours[rows[r], a]`."""
    forward = neighbours[rows]
    return (neighbours[forward] == rows[:, None, None]).any(axis=2)


def _expanded_k_reciprocal_sets(
    neighbours: np.ndarray, k: int, k_half: int, chunk_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every member of each sample's expanded k-reciprocal set, sorted row-major, no duplicates."""
    num_all = neighbours.shape[0]
    near, near_half = neighbours[:, :k], neighbours[:, :k_half]
    half_mask = _reciprocal_mask(near_half, np.arange(num_all))
    half_sizes = half_mask.sum(axis=1)

    keys = []
    for start in range(0, num_all, chunk_size):
        rows = np.arange(start, min(start + chunk_size, num_all))
        forward = near[rows]
        mask = _reciprocal_mask(near, rows)
        # A k-reciprocal neighbour c adds its own (k/2)-reciprocal set when more than 2/3 of that set is already
        # in this sample's k-reciprocal set.
        candidate_sets = near_half[forward]
        candidate_masks = half_mask[forward]
        in_own_set = ((candidate_sets[..., None] == forward[:, None, None, :]) & mask[:, None, None, :]).any(axis=3)
        shared = (in_own_set & candidate_masks).sum(axis=2)
        expand = mask & (shared > 2.0 / 3 * half_sizes[forward])

        row_keys = rows[:, None] * num_all
        keys.append((row_keys + forward)[mask])
        keys.append((row_keys[:, :, None] + candidate_sets)[expand[..., None] & candidate_masks])
    unique_keys = np.unique(np.concatenate(keys))
    return unique_keys // num_all, unique_keys % num_all


def _query_expansion(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, neighbours: np.ndarray, num_all: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse V_qe[i] = mean of V over the rows of i's `neighbours.shape[1]` nearest samples."""
    row_starts = np.searchsorted(rows, np.arange(num_all + 1))
    counts = np.diff(row_starts)[neighbours].ravel()
    sources = np.repeat(row_starts[neighbours].ravel(), counts) + _ranges(counts)
    targets = np.repeat(np.arange(num_all), counts.reshape(neighbours.shape).sum(axis=1))
    unique_keys, inverse = np.unique(targets * num_all + cols[sources], return_inverse=True)
    sums = np.bincount(inverse, weights=values[sources])
    return unique_keys // num_all, unique_keys % num_all, (sums / neighbours.shape[1]).astype(np.float32)


def _sum_of_minima(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, num_q: int, num_all: int) -> np.ndarray:
    """overlap[i, j] = sum_k min(V[i, k], V[num_q + j, k]) over the columns k where both are non-zero (float32)."""
    num_g = num_all - num_q
    is_query = rows < num_q
    q_rows, q_cols, q_values = rows[is_query], cols[is_query], values[is_query]
    g_by_col = np.argsort(cols[~is_query], kind="stable")
    g_rows = rows[~is_query][g_by_col] - num_q
    g_values = values[~is_query][g_by_col]
    g_col_starts = np.searchsorted(cols[~is_query][g_by_col], np.arange(num_all + 1))
    pairs_per_entry = np.diff(g_col_starts)[q_cols]

    # Query rows are processed in chunks whose expanded (query entry, gallery entry) pairs fit the budget.
    q_row_starts = np.searchsorted(q_rows, np.arange(num_q + 1))
    pairs_before_row = np.r_[0, np.cumsum(pairs_per_entry)][q_row_starts]
    max_rows = max(1, _PAIR_BUDGET // max(num_g, 1))
    overlap = np.empty((num_q, num_g), dtype=np.float32)
    start = 0
    while start < num_q:
        stop = np.searchsorted(pairs_before_row, pairs_before_row[start] + _PAIR_BUDGET, side="right") - 1
        stop = min(max(stop, start + 1), start + max_rows, num_q)
        entries = slice(q_row_starts[start], q_row_starts[stop])
        counts = pairs_per_entry[entries]
        gallery_entries = np.repeat(g_col_starts[q_cols[entries]], counts) + _ranges(counts)
        minima = np.minimum(np.repeat(q_values[entries], counts), g_values[gallery_entries])
        cells = (np.repeat(q_rows[entries], counts) - start) * num_g + g_rows[gallery_entries]
        sums = np.bincount(cells, weights=minima, minlength=(stop - start) * num_g)
        overlap[start:stop] = sums.reshape(stop - start, num_g)
        start = stop
    return overlap


def _ranges(counts: np.ndarray) -> np.ndarray:
    """Concatenation of `arange(c)` for each c in `counts`."""
    ends = np.cumsum(counts)
    return np.arange(ends[-1] if ends.size else 0) - np.repeat(ends - counts, counts)
