"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), vectorised; same output as torchreid's `reid/utils/rerank.py`.

torchreid squares the distances of all N = num_query + num_gallery samples (`[[q_q, q_g], [q_g^T, g_g]]`, float32),
divides each column of that N x N matrix by the column's maximum and transposes it: row i of the result R is
column i of the squares over its maximum. Only three things of R enter the result: its k nearest entries per row,
its values at the members of each sample's expanded k-reciprocal set, and its query-gallery block. Both entry
points take them from a source of R's rows, block by block:

- `re_ranking(q_g_dist, q_q_dist, g_g_dist)`: torchreid's signature; R's rows are written from the three matrices.
- `re_ranking_features(query_features, gallery_features, metric)` (and `reranked_blocks`, which yields the
  re-ranked query x gallery distances a block of queries at a time): the three matrices torchreid is given are the
  features' distances, so R's rows are computed from the features, squared and divided by the row's maximum. The
  distances are symmetric (`hacnn_tf.evaluation.distance`: to the BLAS's last bit), so column i of the squares is
  row i and its maximum is known once the row block is computed. Memory is O(N k), not O(N^2).

The encoding matrix V (a few dozen non-zeros per row) is kept sparse as sorted COO arrays (row-major keys), so the
query expansion and the Jaccard distance cost time proportional to the non-zeros instead of a Python loop per sample.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from hacnn_tf.evaluation._blocks import map_row_ranges, rows_per_block, smallest_k
from hacnn_tf.evaluation.distance import Metric, PreparedFeatures, check_features

__all__ = ["re_ranking", "re_ranking_features", "reranked_blocks"]

# Upper bound on the (query entry, gallery entry) pairs, and on the cells, summed at once in the Jaccard step.
_PAIR_BUDGET = 1 << 20


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
    return _collect(
        _reranked(_MatrixRows(q_g_dist, q_q_dist, g_g_dist), k1, k2, lambda_value, chunk_size), num_q, num_g
    )


def re_ranking_features(
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    metric: Metric = "euclidean",
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    block_size: int | None = None,
) -> np.ndarray:
    """`re_ranking` of the `metric` distances (`compute_distance_matrix`) of `(num_query, D)` and `(num_gallery, D)`
    features, shape `(num_query, num_gallery)` float32, without any N x N matrix (N = num_query + num_gallery).

    Equal to `re_ranking(compute_distance_matrix(q, g), compute_distance_matrix(q, q), compute_distance_matrix(g, g))`
    to float32 rounding. Only the result is dense; to rank without it, iterate `reranked_blocks`."""
    query, gallery = check_features(query_features, gallery_features)
    return _collect(
        reranked_blocks(query, gallery, metric, k1, k2, lambda_value, block_size), query.shape[0], gallery.shape[0]
    )


def reranked_blocks(
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    metric: Metric = "euclidean",
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    block_size: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yields `(start, rows)`: consecutive blocks of query rows of `re_ranking_features`' result, in order (one
    reused buffer: use or copy a block before taking the next).

    Memory: the features, O(N k) for the neighbours and the sparse encoding, and a few blocks of `block_size` rows
    of N distances (by default as many as fit 32 MiB, at least 256)."""
    query, gallery = check_features(query_features, gallery_features)
    source = _FeatureRows(query, gallery, metric)
    return _reranked(source, k1, k2, lambda_value, block_size or rows_per_block(source.num_all))


def _collect(blocks: Iterator[tuple[int, np.ndarray]], num_q: int, num_g: int) -> np.ndarray:
    result = np.empty((num_q, num_g), dtype=np.float32)
    for start, block in blocks:
        result[start : start + block.shape[0]] = block
    return result


def _reranked(
    source: _MatrixRows | _FeatureRows, k1: int, k2: int, lambda_value: float, chunk_size: int
) -> Iterator[tuple[int, np.ndarray]]:
    """torchreid's algorithm on R's rows from `source`; yields blocks of the re-ranked query x gallery rows."""
    if k1 < 1 or k2 < 1 or not 0 <= lambda_value <= 1 or chunk_size < 1:
        raise ValueError(
            f"need k1 >= 1, k2 >= 1, 0 <= lambda_value <= 1 and chunk_size >= 1; got k1={k1}, k2={k2}, "
            f"lambda_value={lambda_value}, chunk_size={chunk_size}"
        )

    def blocks() -> Iterator[tuple[int, np.ndarray]]:
        num_q, num_all = source.num_query, source.num_all
        k_half = int(np.around(k1 / 2.0))
        neighbours = _nearest_neighbours(source, min(max(k1 + 1, k2), num_all), chunk_size)
        rows, cols = _expanded_k_reciprocal_sets(neighbours, k1 + 1, k_half + 1, chunk_size)
        weights = np.exp(-source.pairs(rows, cols))
        row_sums = np.bincount(rows, weights=weights, minlength=num_all).astype(np.float32)
        values = weights / row_sums[rows]
        if k2 != 1:
            rows, cols, values = _query_expansion(rows, cols, values, neighbours[:, :k2], num_all)
        for start, stop, overlap in _sum_of_minima(rows, cols, values, num_q, num_all, chunk_size):
            # torchreid's `(1 - overlap / (2 - overlap)) * (1 - lambda) + original * lambda` (float32), in place.
            np.divide(overlap, 2.0 - overlap, out=overlap)
            np.subtract(1, overlap, out=overlap)
            overlap *= 1 - lambda_value
            original = source.query_gallery(start, stop)
            original *= lambda_value
            overlap += original
            yield start, overlap

    return blocks()


class _MatrixRows:
    """R's rows from the three distance matrices (any dtype, not necessarily symmetric).

    With `squared = [[q_q, q_g], [q_g^T, g_g]] ** 2` (float32), row `i` of R holds column `i` of `squared` divided
    by that column's maximum: torchreid's `(squared / squared.max(axis=0)).T`, bit for bit. A row block is written
    straight from the three inputs (column blocks of them, transposed in cache-sized pieces) instead of assembling,
    squaring, dividing and transposing the whole matrix."""

    def __init__(self, q_g_dist: np.ndarray, q_q_dist: np.ndarray, g_g_dist: np.ndarray) -> None:
        self.q_g, self.q_q, self.g_g = q_g_dist, q_q_dist, g_g_dist
        self.num_query = q_g_dist.shape[0]
        self.num_all = self.num_query + q_g_dist.shape[1]

        def abs_max(d: np.ndarray, axis: int) -> np.ndarray:
            return np.maximum(d.max(axis=axis), -d.min(axis=axis))

        # max of the squares = square of the largest magnitude (rounding is monotonic), without squaring everything.
        magnitude = np.concatenate(
            [
                np.maximum(abs_max(q_q_dist, 0), abs_max(q_g_dist, 1)),
                np.maximum(abs_max(q_g_dist, 0), abs_max(g_g_dist, 0)),
            ]
        )
        self.column_max = np.square(magnitude).astype(np.float32)

    def rows(self, start: int, stop: int) -> np.ndarray:
        block = np.empty((stop - start, self.num_all), dtype=np.float32)
        map_row_ranges(lambda a, b: self._fill(start + a, start + b, block[a:b]), 0, stop - start)
        return block

    def _fill(self, start: int, stop: int, block: np.ndarray) -> None:
        num_q = self.num_query
        if start < num_q:  # rows of query samples: columns [q_q[:, i]; q_g[i, :]] of `squared`
            q_stop = min(stop, num_q)
            block[: q_stop - start, :num_q] = np.square(self.q_q[:, start:q_stop].T)
            block[: q_stop - start, num_q:] = np.square(self.q_g[start:q_stop])
        if stop > num_q:  # rows of gallery samples: columns [q_g[:, j]; g_g[:, j]]
            g_start, g_stop = max(start, num_q) - num_q, stop - num_q
            rows = block[g_start + num_q - start :]
            rows[:, :num_q] = np.square(self.q_g[:, g_start:g_stop].T)
            rows[:, num_q:] = np.square(self.g_g[:, g_start:g_stop].T)
        block /= self.column_max[start:stop, None]

    def pairs(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """R[rows, cols] = squared[cols, rows] / column_max[rows]."""
        num_q = self.num_query
        values = np.empty(rows.shape, dtype=np.result_type(self.q_g, self.q_q, self.g_g))
        for row_query in (True, False):
            for col_query in (True, False):
                where = ((rows < num_q) == row_query) & ((cols < num_q) == col_query)
                r, c = rows[where] - (0 if row_query else num_q), cols[where] - (0 if col_query else num_q)
                if row_query and col_query:
                    values[where] = self.q_q[c, r]
                elif col_query:
                    values[where] = self.q_g[c, r]
                elif row_query:
                    values[where] = self.q_g[r, c]
                else:
                    values[where] = self.g_g[c, r]
        return np.square(values).astype(np.float32, copy=False) / self.column_max[rows]

    def query_gallery(self, start: int, stop: int) -> np.ndarray:
        """R[start:stop, num_query:]."""
        return np.square(self.q_g[start:stop]).astype(np.float32, copy=False) / self.column_max[start:stop, None]


class _FeatureRows:
    """R's rows from features: `d(i, .)^2 / max d(i, .)^2` over all samples, block by block (the distances are
    symmetric, so the column torchreid normalises is the row). `rows` records each row's maximum, which `pairs` and
    `query_gallery` use: they come after all rows."""

    def __init__(self, query: np.ndarray, gallery: np.ndarray, metric: Metric) -> None:
        dtype = np.float64 if np.float64 in (query.dtype, gallery.dtype) else np.float32
        self.features = PreparedFeatures(np.concatenate([query, gallery]), metric, dtype)
        self.num_query, self.num_all = query.shape[0], len(self.features)
        self.gallery = self.features.rows(self.num_query, self.num_all)
        self.row_max = np.zeros(self.num_all, dtype=np.float32)
        self._buffers: dict[int, np.ndarray] = {}

    def rows(self, start: int, stop: int) -> np.ndarray:
        """R[start:stop] (valid until the next call)."""
        return self._normalised(start, stop, self.features, record=True)

    def pairs(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        distances = self.features.paired_distances(cols, self.features, rows)
        return np.square(distances).astype(np.float32, copy=False) / self.row_max[rows]

    def query_gallery(self, start: int, stop: int) -> np.ndarray:
        """R[start:stop, num_query:] (valid until the next call)."""
        return self._normalised(start, stop, self.gallery)

    def _normalised(self, start: int, stop: int, other: PreparedFeatures, record: bool = False) -> np.ndarray:
        # Blocks reuse one buffer per width: first-touching fresh pages costs more than the arithmetic on them.
        held = self._buffers.get(len(other))
        if held is None or held.shape[0] < stop - start:
            held = self._buffers[len(other)] = np.empty((stop - start, len(other)), self.features.features.dtype)
        out = held[: stop - start]
        squared = np.square(self.features.distances(start, stop, other, out), out=out)
        squared = squared.astype(np.float32, copy=False)
        if record:
            self.row_max[start:stop] = squared.max(axis=1)
        squared /= self.row_max[start:stop, None]
        return squared


def _nearest_neighbours(source: _MatrixRows | _FeatureRows, k: int, chunk_size: int) -> np.ndarray:
    """The `k` nearest samples of every row of R, nearest first (ties by index), on all cores."""
    neighbours = np.empty((source.num_all, k), dtype=np.int64)
    for start in range(0, source.num_all, chunk_size):
        stop = min(start + chunk_size, source.num_all)
        block = source.rows(start, stop)

        def select(a: int, b: int, start: int = start, block: np.ndarray = block) -> None:
            neighbours[start + a : start + b] = smallest_k(block[a:b], k)

        map_row_ranges(select, 0, stop - start)
    return neighbours


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
    unique_keys, _ = _unique(np.concatenate(keys))
    return unique_keys // num_all, unique_keys % num_all


def _query_expansion(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, neighbours: np.ndarray, num_all: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse V_qe[i] = mean of V over the rows of i's `neighbours.shape[1]` nearest samples."""
    row_starts = np.searchsorted(rows, np.arange(num_all + 1))
    counts = np.diff(row_starts)[neighbours].ravel()
    sources = np.repeat(row_starts[neighbours].ravel(), counts) + _ranges(counts)
    targets = np.repeat(np.arange(num_all), counts.reshape(neighbours.shape).sum(axis=1))
    unique_keys, inverse = _unique(targets * num_all + cols[sources], return_inverse=True)
    sums = np.bincount(inverse, weights=values[sources])
    return unique_keys // num_all, unique_keys % num_all, (sums / neighbours.shape[1]).astype(np.float32)


def _sum_of_minima(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, num_q: int, num_all: int, block_rows: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yields `(start, stop, overlap[start:stop])` for consecutive blocks of `block_rows` query rows (one reused
    buffer), where overlap[i, j] = sum_k min(V[i, k], V[num_q + j, k]) over the columns k where both are non-zero."""
    num_g = num_all - num_q
    is_query = rows < num_q
    q_rows, q_cols, q_values = rows[is_query], cols[is_query], values[is_query]
    g_by_col = np.argsort(cols[~is_query], kind="stable")
    g_rows = rows[~is_query][g_by_col] - num_q
    g_values = values[~is_query][g_by_col]
    g_col_starts = np.searchsorted(cols[~is_query][g_by_col], np.arange(num_all + 1))
    pairs_per_entry = np.diff(g_col_starts)[q_cols]

    # Query rows are summed in chunks whose expanded (query entry, gallery entry) pairs and cells fit the budget.
    q_row_starts = np.searchsorted(q_rows, np.arange(num_q + 1))
    pairs_before_row = np.r_[0, np.cumsum(pairs_per_entry)][q_row_starts]
    max_rows = max(1, _PAIR_BUDGET // max(num_g, 1))
    overlap = np.empty((min(block_rows, num_q), num_g), dtype=np.float32)
    for block_start in range(0, num_q, block_rows):
        block_stop = min(block_start + block_rows, num_q)
        start = block_start
        while start < block_stop:
            stop = np.searchsorted(pairs_before_row, pairs_before_row[start] + _PAIR_BUDGET, side="right") - 1
            stop = min(max(stop, start + 1), start + max_rows, block_stop)
            entries = slice(q_row_starts[start], q_row_starts[stop])
            counts = pairs_per_entry[entries]
            gallery_entries = np.repeat(g_col_starts[q_cols[entries]], counts) + _ranges(counts)
            minima = np.minimum(np.repeat(q_values[entries], counts), g_values[gallery_entries])
            cells = (np.repeat(q_rows[entries], counts) - start) * num_g + g_rows[gallery_entries]
            sums = np.bincount(cells, weights=minima, minlength=(stop - start) * num_g)
            overlap[start - block_start : stop - block_start] = sums.reshape(stop - start, num_g)
            start = stop
        yield block_start, block_stop, overlap[: block_stop - block_start]


def _unique(keys: np.ndarray, return_inverse: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """`np.unique(keys, return_inverse=...)` by one sort (numpy 2.4's hash-based `unique` ran ten times slower here)."""
    order = np.argsort(keys, kind="stable") if return_inverse else None
    ordered = keys[order] if return_inverse else np.sort(keys)
    first = np.r_[True, ordered[1:] != ordered[:-1]] if ordered.size else np.zeros(0, bool)
    if not return_inverse:
        return ordered[first], None
    inverse = np.empty(keys.size, dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _ranges(counts: np.ndarray) -> np.ndarray:
    """Concatenation of `arange(c)` for each c in `counts`."""
    ends = np.cumsum(counts)
    return np.arange(ends[-1] if ends.size else 0) - np.repeat(ends - counts, counts)
