"""CMC, mAP and mINP with the semantics of torchreid's `reid/metrics/rank.py`, from a distance matrix or from features.

Market-1501 protocol (`eval_market1501`): gallery images sharing the query's identity AND camera are discarded,
queries left without a true match are skipped, CMC is the fraction of valid queries whose first true match is
within rank k and AP averages precision@k over the positions of the true matches. mINP (Ye et al., "Deep Learning
for Person Re-identification: A Survey and Outlook", TPAMI 2021) averages the inverse negative penalty
`num_matches / rank of the hardest (last) true match`, as fast-reid computes it.

Neither path sorts a gallery row: the rank of a true match among the kept images is the number of entries of its
row below its distance, minus the discarded ones below it, counted on the part of the row below the hardest match.
That is the position `np.argsort` (numpy's default kind, as torchreid) gives it, unless its distance is tied with
another entry of the row; such rows, and the CUHK03 protocol, are ranked with `np.argsort` itself, so ties break
exactly as in torchreid.

CUHK03 classic protocol (`eval_cuhk03`): AP is the same; the CMC is averaged over 10 repeats that each keep one
randomly sampled gallery image per identity. torchreid draws from the global `np.random`; here the draws come from a
`numpy.random.Generator` seeded by `seed`, one `random()` per identity in order of first appearance in the ranked list,
repeat after repeat, query after query, the sampled image being `images[int(u * len(images))]`.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hacnn_tf.data.identities import comparable_ids
from hacnn_tf.evaluation._blocks import map_row_ranges, rows_per_block
from hacnn_tf.evaluation.distance import Metric, check_features, distance_blocks
from hacnn_tf.evaluation.query_expansion import average_query_expansion
from hacnn_tf.evaluation.rerank import reranked_blocks
from hacnn_tf.io_utils import atomic_output

__all__ = [
    "evaluate",
    "evaluate_features",
    "evaluate_from_features",
    "evaluate_rank",
    "results_dict",
    "results_table",
    "write_results",
]

_CUHK03_REPEATS = 10
# Up to this many true matches, a query's ranks are counted with a pass over its row each; beyond, by one sort.
_COUNTING_PASSES = 64
# Ranked gallery entries per query, relative to its identity: 0 = other identity, 1 = true match, 2 = discarded.
_TRUE_MATCH, _DISCARDED = 1, 2


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
    use_metric_cuhk03: bool = False,
    seed: int | np.random.Generator | None = None,
    chunk_size: int = 256,
    return_minp: bool = False,
) -> tuple[np.ndarray, float] | tuple[np.ndarray, float, float]:
    """CMC curve (float32, length `min(max_rank, num_gallery)`) and mAP of a query x gallery distance matrix
    (and mINP with `return_minp`).

    `seed` (an int or a `numpy.random.Generator`) only matters for the CUHK03 protocol. If a valid query's list
    holds fewer than `max_rank` entries its CMC stays at 1 beyond them (torchreid fails on such ragged curves).
    Raises ValueError on inconsistent shapes, NaN distances, or when no query has a true match in the gallery, and
    `hacnn_tf.errors.DataError` (a ValueError) on ids that are not exact integers (`hacnn_tf.data.identities`:
    fractional or non-finite floats, floats beyond their exact integer range, signed and unsigned ids without an
    exact common type); equal ids give the same result whatever their dtypes.
    """
    distmat = np.asarray(distmat)
    if distmat.ndim != 2 or distmat.shape[1] == 0:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery) with a gallery, got shape {distmat.shape}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    ranks = _RankAccumulator(q_pids, g_pids, q_camids, g_camids, distmat.shape, max_rank, use_metric_cuhk03, seed)
    for start in range(0, distmat.shape[0], chunk_size):
        ranks.add(start, distmat[start : start + chunk_size])
    return ranks.result(return_minp)


def evaluate_features(
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    metric: Metric = "euclidean",
    rerank: bool = False,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    aqe: bool = False,
    aqe_k: int = 10,
    aqe_alpha: float = 3.0,
    max_rank: int = 50,
    use_metric_cuhk03: bool = False,
    seed: int | np.random.Generator | None = None,
    block_size: int | None = None,
    return_minp: bool = False,
) -> tuple[np.ndarray, float] | tuple[np.ndarray, float, float]:
    """`evaluate_rank` of the `metric` distances between `(num_query, D)` and `(num_gallery, D)` features, without
    the query x gallery matrix: distances are computed `block_size` query rows at a time and reduced to per-query
    statistics, so memory grows with the number of samples, not its square.

    With `rerank`, the distances are k-reciprocal re-ranked (`re_ranking_features`: torchreid's `re_ranking` of the
    three matrices, in O(N k) memory); with `aqe`, the features are first replaced by their average query expansion
    (`average_query_expansion(..., k=aqe_k, alpha=aqe_alpha)`, as fast-reid does before ranking). Returns what
    `evaluate_rank` returns for the same distances. Raises ValueError on non-finite features, naming the input, and
    on ids as `evaluate_rank` does.
    """
    query, gallery = check_features(query_features, gallery_features)
    ranks = _RankAccumulator(
        q_pids, g_pids, q_camids, g_camids, (query.shape[0], gallery.shape[0]), max_rank, use_metric_cuhk03, seed
    )
    if aqe:
        query, gallery = average_query_expansion(query, gallery, k=aqe_k, alpha=aqe_alpha, block_size=block_size)
    if rerank:
        blocks = reranked_blocks(query, gallery, metric, k1, k2, lambda_value, block_size)
    else:
        blocks = distance_blocks(query, gallery, metric, block_size or rows_per_block(gallery.shape[0]), check=False)
    for start, block in blocks:
        ranks.add(start, block)
    return ranks.result(return_minp)


class _RankAccumulator:
    """Per-query match statistics of consecutive query blocks of distances, reduced to CMC, mAP and mINP."""

    def __init__(
        self,
        q_pids,
        g_pids,
        q_camids,
        g_camids,
        shape: tuple[int, int],
        max_rank: int,
        use_metric_cuhk03: bool,
        seed: int | np.random.Generator | None,
    ) -> None:
        self.q_pids, self.g_pids, self.q_camids, self.g_camids = (
            np.asarray(a) for a in (q_pids, g_pids, q_camids, g_camids)
        )
        num_q, num_g = shape
        if num_g == 0:
            raise ValueError("the gallery is empty")
        for name, array, length in (
            ("q_pids", self.q_pids, num_q),
            ("q_camids", self.q_camids, num_q),
            ("g_pids", self.g_pids, num_g),
            ("g_camids", self.g_camids, num_g),
        ):
            if array.shape != (length,):
                raise ValueError(
                    f"{name} must be 1-D of length {length} to match the (num_query, num_gallery) "
                    f"shape {shape}, got {array.shape}"
                )
        if max_rank < 1:
            raise ValueError(f"max_rank must be >= 1, got {max_rank}")
        # Query and gallery ids in one exact integer dtype, so that every comparison below is exact.
        self.q_pids, self.g_pids = comparable_ids(self.q_pids, self.g_pids, "pids")
        self.q_camids, self.g_camids = comparable_ids(self.q_camids, self.g_camids, "camids")
        self.max_rank = min(max_rank, num_g)
        self.rng = np.random.default_rng(seed) if use_metric_cuhk03 else None
        # Gallery positions grouped by identity (ascending within each), to find a query's same-identity images.
        self.by_identity = np.argsort(self.g_pids, kind="stable")
        self.identities, self.identity_starts = np.unique(self.g_pids[self.by_identity], return_index=True)
        self.identity_stops = np.r_[self.identity_starts[1:], num_g]
        self.first_ranks, self.average_precisions, self.inverse_penalties, self.cuhk03_cmcs = [], [], [], []

    def add(self, start: int, distances: np.ndarray) -> None:
        """Statistics of the queries `start : start + len(distances)` from their rows of distances."""
        nan_rows = np.count_nonzero(np.isnan(distances).any(axis=1))
        if nan_rows:
            raise ValueError(f"the distances hold NaN in {nan_rows} query rows (from row {start}); NaN has no rank")
        if self.rng is not None:
            rows, ranks = self._ranked_kept_ranks(start, distances, np.arange(distances.shape[0]), self.rng)
        else:
            parts = map_row_ranges(lambda a, b: self._counted_kept_ranks(start, distances, a, b), 0, distances.shape[0])
            rows = np.concatenate([part[0] for part in parts])
            ranks = np.concatenate([part[1] for part in parts])
            tied = np.concatenate([part[2] for part in parts])
            if tied.size:
                tied_rows, tied_ranks = self._ranked_kept_ranks(start, distances, tied)
                order = np.lexsort((np.r_[ranks, tied_ranks], np.r_[rows, tied_rows]))
                rows, ranks = np.r_[rows, tied_rows][order], np.r_[ranks, tied_ranks][order]
        first_rank, ap, inp, valid = _match_statistics(rows, ranks, distances.shape[0])
        self.first_ranks.append(first_rank[valid])
        self.average_precisions.append(ap[valid])
        self.inverse_penalties.append(inp[valid])

    def result(self, return_minp: bool) -> tuple[np.ndarray, float] | tuple[np.ndarray, float, float]:
        first_ranks = np.concatenate(self.first_ranks) if self.first_ranks else np.zeros(0, np.int64)
        num_valid = first_ranks.size
        if num_valid == 0:
            raise ValueError(
                "no query identity appears in the gallery (after discarding same-identity same-camera images); "
                "CMC and mAP are undefined"
            )
        if self.rng is not None:
            cmc = np.stack(self.cuhk03_cmcs).sum(axis=0) / np.float32(num_valid)
        else:
            hits = np.bincount(first_ranks[first_ranks < self.max_rank], minlength=self.max_rank)
            cmc = np.cumsum(hits).astype(np.float32) / np.float32(num_valid)
        mean_ap = float(np.mean(np.concatenate(self.average_precisions)))
        if return_minp:
            return cmc, mean_ap, float(np.mean(np.concatenate(self.inverse_penalties)))
        return cmc, mean_ap

    def _same_identity(self, query: int) -> np.ndarray:
        """Gallery positions of the query's identity, ascending."""
        pid = self.q_pids[query]
        position = np.searchsorted(self.identities, pid)
        if position == self.identities.size or self.identities[position] != pid:
            return self.by_identity[:0]
        return self.by_identity[self.identity_starts[position] : self.identity_stops[position]]

    def _counted_kept_ranks(
        self, start: int, distances: np.ndarray, first: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, kept rank) of every true match of rows `first:stop`, by counting; the rows with tied distances."""
        rows, ranks, tied = [], [], []
        for row in range(first, stop):
            same = self._same_identity(start + row)
            if same.size == 0:
                continue
            discarded = self.g_camids[same] == self.q_camids[start + row]
            values = distances[row, same[~discarded]]
            if values.size == 0:
                continue
            # Entries ranked before the hardest match: the only ones that can precede any true match. A few matches
            # count them in a pass each; many sort them once.
            below = distances[row][distances[row] <= values.max()]
            if values.size <= _COUNTING_PASSES:
                less = np.array([np.count_nonzero(below < value) for value in values])
                is_tied = any(np.count_nonzero(below == value) > 1 for value in values)
            else:
                below.sort()
                less = np.searchsorted(below, values, side="left")
                is_tied = bool((np.searchsorted(below, values, side="right") - less > 1).any())
            if is_tied:
                tied.append(row)
                continue
            less -= np.searchsorted(np.sort(distances[row, same[discarded]]), values, side="left")
            rows.append(np.full(values.size, row))
            ranks.append(np.sort(less))
        empty = np.zeros(0, np.int64)
        return (
            np.concatenate(rows) if rows else empty,
            np.concatenate(ranks) if ranks else empty,
            np.asarray(tied, dtype=np.int64),
        )

    def _ranked_kept_ranks(
        self, start: int, distances: np.ndarray, rows: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(row, kept rank) of every true match of `rows`, from `np.argsort` of those rows (and, with `rng`, their
        CUHK03 single-gallery-shot CMC)."""
        queries = start + rows
        order = np.argsort(distances[rows], axis=1)
        same_pid = self.q_pids[queries, None] == self.g_pids[None, :]
        same_cam = self.q_camids[queries, None] == self.g_camids[None, :]
        labels = same_pid.astype(np.int8) + (same_pid & same_cam)
        ranked = np.take_along_axis(labels, order, axis=1)
        match_rows, kept_ranks = _kept_ranks_of_ranked(ranked)
        if rng is not None:
            for row in np.unique(match_rows):
                kept_pids = self.g_pids[order[row][ranked[row] != _DISCARDED]]
                self.cuhk03_cmcs.append(
                    _single_gallery_shot_cmc(kept_pids, self.q_pids[queries[row]], self.max_rank, rng)
                )
        return rows[match_rows], kept_ranks


def _kept_ranks_of_ranked(ranked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, rank among kept images) of every true match in rows of ranked labels, row-major."""
    num_g = ranked.shape[1]
    match_rows, match_cols = np.nonzero(ranked == _TRUE_MATCH)
    discarded_rows, discarded_cols = np.nonzero(ranked == _DISCARDED)
    # Rank among kept images = position in the full ranking minus the discarded images ranked before it in its row;
    # np.nonzero lists entries in row-major order, so both key arrays are sorted.
    discarded_keys = discarded_rows * num_g + discarded_cols
    discarded_before = np.searchsorted(discarded_keys, match_rows * num_g + match_cols) - np.searchsorted(
        discarded_keys, match_rows * num_g
    )
    return match_rows, match_cols - discarded_before


def _match_statistics(
    match_rows: np.ndarray, kept_ranks: np.ndarray, num_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row, from its true matches' ranks among kept images (sorted by row, then rank): rank of the first
    match, AP, inverse negative penalty (matches / (rank of the last match + 1)), and whether any match exists."""
    num_matches = np.bincount(match_rows, minlength=num_rows)
    row_starts = np.cumsum(num_matches) - num_matches
    matches_so_far = np.arange(1, match_rows.size + 1) - row_starts[match_rows]
    precision_sums = np.bincount(match_rows, weights=matches_so_far / (kept_ranks + 1.0), minlength=num_rows)

    valid = num_matches > 0
    first_rank = np.zeros(num_rows, dtype=np.int64)
    first_rank[valid] = kept_ranks[row_starts[valid]]
    last_rank = np.zeros(num_rows, dtype=np.int64)
    last_rank[valid] = kept_ranks[row_starts[valid] + num_matches[valid] - 1]
    ap = np.divide(precision_sums, num_matches, out=np.zeros(num_rows), where=valid)
    inp = np.divide(num_matches, last_rank + 1.0, out=np.zeros(num_rows), where=valid)
    return first_rank, ap, inp, valid


def _single_gallery_shot_cmc(
    kept_pids: np.ndarray, query_pid: int, max_rank: int, rng: np.random.Generator
) -> np.ndarray:
    """CUHK03 CMC of one query: mean over repeats of the curve with one sampled gallery image per identity."""
    by_identity = np.argsort(kept_pids, kind="stable")  # kept ranks grouped by identity, ascending within each
    sorted_pids = kept_pids[by_identity]
    starts = np.flatnonzero(np.r_[True, sorted_pids[1:] != sorted_pids[:-1]])
    sizes = np.diff(np.r_[starts, sorted_pids.size])
    appearance = np.argsort(by_identity[starts])  # identities in order of first appearance in the ranked list
    starts, sizes = starts[appearance], sizes[appearance]
    own = np.flatnonzero(sorted_pids[starts] == query_pid)[0]

    draws = rng.random((_CUHK03_REPEATS, starts.size))
    sampled_ranks = by_identity[starts + (draws * sizes).astype(np.int64)]
    match_positions = (sampled_ranks < sampled_ranks[:, own, None]).sum(axis=1)
    hits = np.bincount(match_positions[match_positions < max_rank], minlength=max_rank)
    return np.cumsum(hits).astype(np.float32) / np.float32(_CUHK03_REPEATS)


def evaluate(
    distmat: np.ndarray,
    query_df: pd.DataFrame,
    gallery_df: pd.DataFrame,
    ranks: Sequence[int] = (1, 5, 10, 20),
    max_rank: int = 50,
    use_metric_cuhk03: bool = False,
    seed: int | np.random.Generator | None = None,
    pid_column: str = "pid",
    camid_column: str = "camid",
) -> dict[str, float | np.ndarray]:
    """`evaluate_rank` on identities/cameras read from data frames (one row per distmat row / column).

    Returns `results_dict`: `{"mAP": float, "mINP": float, "rank1": float, ..., "cmc": np.ndarray}`, fractions.
    """
    cmc, mean_ap, mean_inp = evaluate_rank(
        distmat,
        *_frame_ids(query_df, gallery_df, pid_column, camid_column),
        max_rank=max([max_rank, *ranks]),
        use_metric_cuhk03=use_metric_cuhk03,
        seed=seed,
        return_minp=True,
    )
    return results_dict(cmc, mean_ap, mean_inp, ranks)


def evaluate_from_features(
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    query_df: pd.DataFrame,
    gallery_df: pd.DataFrame,
    ranks: Sequence[int] = (1, 5, 10, 20),
    max_rank: int = 50,
    pid_column: str = "pid",
    camid_column: str = "camid",
    **options,
) -> dict[str, float | np.ndarray]:
    """`evaluate_features` on identities/cameras read from data frames (one row per feature row); `options` are
    its keyword arguments (`metric`, `rerank`, `aqe`, `use_metric_cuhk03`, `seed`, ...). Returns `results_dict`."""
    cmc, mean_ap, mean_inp = evaluate_features(
        query_features,
        gallery_features,
        *_frame_ids(query_df, gallery_df, pid_column, camid_column),
        max_rank=max([max_rank, *ranks]),
        return_minp=True,
        **options,
    )
    return results_dict(cmc, mean_ap, mean_inp, ranks)


def _frame_ids(
    query_df: pd.DataFrame, gallery_df: pd.DataFrame, pid_column: str, camid_column: str
) -> tuple[np.ndarray, ...]:
    """`(q_pids, g_pids, q_camids, g_camids)` from the two tables."""
    return (
        query_df[pid_column].to_numpy(),
        gallery_df[pid_column].to_numpy(),
        query_df[camid_column].to_numpy(),
        gallery_df[camid_column].to_numpy(),
    )


def results_dict(
    cmc: np.ndarray, mean_ap: float, mean_inp: float, ranks: Sequence[int] = (1, 5, 10, 20)
) -> dict[str, float | np.ndarray]:
    """`{"mAP", "mINP", "rank1", ..., "cmc"}` (fractions) from a CMC curve, mAP and mINP; ValueError for ranks
    beyond the curve."""
    too_deep = [k for k in ranks if not 1 <= k <= cmc.size]
    if too_deep:
        raise ValueError(f"ranks {too_deep} are outside 1..{cmc.size} (the gallery has {cmc.size} images)")
    return {"mAP": mean_ap, "mINP": mean_inp, **{f"rank{k}": float(cmc[k - 1]) for k in ranks}, "cmc": cmc}


def results_table(results: Mapping[str, Mapping[str, float | np.ndarray]], percent: bool = True) -> pd.DataFrame:
    """One row per named result (e.g. `evaluate` outputs), one column per scalar metric; arrays (CMC) are left out.

    With `percent`, values are multiplied by 100, as re-id results are usually reported.
    """
    rows = {
        name: {key: float(value) for key, value in metrics.items() if np.ndim(value) == 0}
        for name, metrics in results.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table * 100 if percent else table


def write_results(
    table: pd.DataFrame, path_stem: str | os.PathLike[str], float_format: str = "{:.2f}"
) -> tuple[pathlib.Path, pathlib.Path]:
    """Writes `<path_stem>.csv` (full precision) and `<path_stem>.md` (floats as `float_format`), each atomically."""
    csv_path = pathlib.Path(f"{os.fspath(path_stem)}.csv")
    md_path = pathlib.Path(f"{os.fspath(path_stem)}.md")
    with atomic_output(csv_path) as tmp:
        table.to_csv(tmp)
    with atomic_output(md_path) as tmp:
        tmp.write_text(_markdown_table(table, float_format), encoding="utf-8")
    return csv_path, md_path


def _markdown_table(table: pd.DataFrame, float_format: str) -> str:
    def cell(value: object) -> str:
        text = float_format.format(value) if isinstance(value, (float, np.floating)) else str(value)
        return text.replace("|", r"\|").replace("\n", " ")

    header = [table.index.name or "", *map(str, table.columns)]
    numeric = [pd.api.types.is_numeric_dtype(dtype) for dtype in table.dtypes]
    lines = [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "|" + "|".join([":---", *("---:" if n else ":---" for n in numeric)]) + "|",
    ]
    for label, row in zip(table.index, table.itertuples(index=False)):
        lines.append("| " + " | ".join(cell(v) for v in (label, *row)) + " |")
    return "\n".join(lines) + "\n"
