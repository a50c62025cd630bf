"""CMC / mAP evaluation with the semantics of torchreid's `reid/metrics/rank.py`, vectorised over query chunks.

Market-1501 protocol (`eval_market1501`): each gallery row is ranked by `np.argsort` (numpy's default kind, so ties
break exactly as in torchreid), gallery images sharing the query's identity AND camera are discarded, queries
left without a true match are skipped, CMC is the fraction of valid queries whose first true match is within rank k
and AP averages precision@k over the positions of the true matches.

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

from hacnn_tf.io_utils import atomic_output

__all__ = ["evaluate", "evaluate_rank", "results_table", "write_results"]

_CUHK03_REPEATS = 10
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
) -> tuple[np.ndarray, float]:
    """CMC curve (float32, length `min(max_rank, num_gallery)`) and mAP of a query x gallery distance matrix.

    `seed` (an int or a `numpy.random.Generator`) only matters for the CUHK03 protocol. If a valid query's list
    holds fewer than `max_rank` entries its CMC stays at 1 beyond them (torchreid fails on such ragged curves).
    Raises ValueError on inconsistent shapes or when no query has a true match in the gallery.
    """
    distmat = np.asarray(distmat)
    q_pids, g_pids, q_camids, g_camids = (np.asarray(a) for a in (q_pids, g_pids, q_camids, g_camids))
    _check_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    if max_rank < 1 or chunk_size < 1:
        raise ValueError(f"max_rank and chunk_size must be >= 1, got {max_rank} and {chunk_size}")
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    rng = np.random.default_rng(seed) if use_metric_cuhk03 else None

    first_match_ranks, average_precisions, cuhk03_cmcs = [], [], []
    for start in range(0, num_q, chunk_size):
        stop = min(start + chunk_size, num_q)
        order = np.argsort(distmat[start:stop], axis=1)
        same_pid = q_pids[start:stop, None] == g_pids[None, :]
        same_cam = q_camids[start:stop, None] == g_camids[None, :]
        labels = same_pid.astype(np.int8) + (same_pid & same_cam)
        ranked = np.take_along_axis(labels, order, axis=1)

        first_rank, ap, valid = _ranked_match_statistics(ranked)
        first_match_ranks.append(first_rank[valid])
        average_precisions.append(ap[valid])
        if rng is not None:
            for row in np.flatnonzero(valid):
                kept_pids = g_pids[order[row][ranked[row] != _DISCARDED]]
                cuhk03_cmcs.append(_single_gallery_shot_cmc(kept_pids, q_pids[start + row], max_rank, rng))

    first_ranks = np.concatenate(first_match_ranks)
    num_valid = first_ranks.size
    if num_valid == 0:
        raise ValueError(
            "no query identity appears in the gallery (after discarding same-identity same-camera images); "
            "CMC and mAP are undefined"
        )
    if rng is not None:
        cmc = np.stack(cuhk03_cmcs).sum(axis=0) / np.float32(num_valid)
    else:
        hits = np.bincount(first_ranks[first_ranks < max_rank], minlength=max_rank)
        cmc = np.cumsum(hits).astype(np.float32) / np.float32(num_valid)
    return cmc, float(np.mean(np.concatenate(average_precisions)))


def _check_inputs(
    distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray, g_camids: np.ndarray
) -> None:
    if distmat.ndim != 2 or distmat.shape[1] == 0:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery) with a gallery, got shape {distmat.shape}")
    num_q, num_g = distmat.shape
    arrays = {"q_pids": (q_pids, num_q), "q_camids": (q_camids, num_q), "g_pids": (g_pids, num_g),
              "g_camids": (g_camids, num_g)}
    for name, (array, length) in arrays.items():
        if array.shape != (length,):
            raise ValueError(f"{name} must be 1-D of length {length} to match distmat {distmat.shape}, got {array.shape}")


def _ranked_match_statistics(ranked: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ranked labels: rank of the first true match among kept images, AP, and whether any match exists."""
    num_rows, num_g = ranked.shape
    match_rows, match_cols = np.nonzero(ranked == _TRUE_MATCH)
    discarded_rows, discarded_cols = np.nonzero(ranked == _DISCARDED)
    # Rank among kept images = position in the full ranking minus the discarded images ranked before it in its row;
    # np.nonzero lists entries in row-major order, so both key arrays are sorted.
    discarded_keys = discarded_rows * num_g + discarded_cols
    discarded_before = np.searchsorted(discarded_keys, match_rows * num_g + match_cols) - np.searchsorted(
        discarded_keys, match_rows * num_g
    )
    kept_ranks = match_cols - discarded_before

    num_matches = np.bincount(match_rows, minlength=num_rows)
    row_starts = np.cumsum(num_matches) - num_matches
    matches_so_far = np.arange(1, match_rows.size + 1) - row_starts[match_rows]
    precision_sums = np.bincount(match_rows, weights=matches_so_far / (kept_ranks + 1.0), minlength=num_rows)

    valid = num_matches > 0
    first_rank = np.zeros(num_rows, dtype=np.int64)
    first_rank[valid] = kept_ranks[row_starts[valid]]
    ap = np.divide(precision_sums, num_matches, out=np.zeros(num_rows), where=valid)
    return first_rank, ap, valid


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

    Returns `{"mAP": float, "rank1": float, ..., "cmc": np.ndarray}` with fractions in [0, 1].
    """
    cmc, mean_ap = evaluate_rank(
        distmat,
        query_df[pid_column].to_numpy(),
        gallery_df[pid_column].to_numpy(),
        query_df[camid_column].to_numpy(),
        gallery_df[camid_column].to_numpy(),
        max_rank=max([max_rank, *ranks]),
        use_metric_cuhk03=use_metric_cuhk03,
        seed=seed,
    )
    too_deep = [k for k in ranks if not 1 <= k <= cmc.size]
    if too_deep:
        raise ValueError(f"ranks {too_deep} are outside 1..{cmc.size} (the gallery has {cmc.size} images)")
    return {"mAP": mean_ap, **{f"rank{k}": float(cmc[k - 1]) for k in ranks}, "cmc": cmc}


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
