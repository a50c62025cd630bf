"""Row-block helpers of the evaluation: block sizes from a memory budget, and row ranges processed on all cores."""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import numpy as np

# Bytes a block of distances should take: its buffer is reused block after block (first-touching fresh pages is
# slow), so this bounds memory, while at least `MIN_BLOCK_ROWS` rows keep the matrix products efficient.
BLOCK_BYTES = 1 << 25
MIN_BLOCK_ROWS = 256

# Columns sampled per row to bound its k-th smallest value before selecting the k smallest (`smallest_k`).
SAMPLED_COLUMNS = 4096

T = TypeVar("T")
_THREAD_PREFIX = "hacnn_evaluation"
_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def rows_per_block(num_columns: int, itemsize: int = 4, budget: int = BLOCK_BYTES, maximum: int = 2048) -> int:
    """How many rows of `num_columns` values of `itemsize` bytes fit the budget (at least `MIN_BLOCK_ROWS`, at most
    `maximum`)."""
    return int(min(maximum, max(MIN_BLOCK_ROWS, budget // max(1, num_columns * itemsize))))


def map_row_ranges(fn: Callable[[int, int], T], start: int, stop: int, min_rows: int = 4) -> list[T]:
    """`fn(a, b)` on consecutive sub-ranges of `[start, stop)`, one per core, in threads; results in order.

    numpy releases the GIL inside its loops (comparisons, counting, sorting, partitioning, copying), so the
    threads run in parallel as long as each call does array work rather than Python work."""
    workers = os.cpu_count() or 1
    parts = max(1, min(workers, (stop - start) // min_rows))
    bounds = [start + (stop - start) * i // parts for i in range(parts + 1)]
    if parts == 1 or threading.current_thread().name.startswith(_THREAD_PREFIX):  # no nesting: the pool is shared
        return [fn(start, stop)]
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=_THREAD_PREFIX)
    return list(_POOL.map(fn, bounds[:-1], bounds[1:]))


def smallest_k(block: np.ndarray, k: int, largest: bool = False) -> np.ndarray:
    """Column indices of the `k` smallest (`largest`: largest) entries of each row, in that order, ties by index.

    The k-th smallest of every `step`-th column bounds the row's k-th smallest from above, so only the entries up to
    that bound (about `k * step` per row) are sorted, instead of partitioning whole rows."""
    num_rows, num_cols = block.shape
    sign = -1 if largest else 1
    step = num_cols // SAMPLED_COLUMNS
    if step >= 2 and k <= SAMPLED_COLUMNS and block.dtype == np.float32 and block.flags.c_contiguous:
        bound = sign * np.partition(sign * block[:, ::step], k - 1, axis=1)[:, k - 1]
        flat = np.flatnonzero(block >= bound[:, None] if largest else block <= bound[:, None])
        rows = flat // num_cols
        counts = np.bincount(rows, minlength=num_rows)
        if counts.min() >= k:  # else rows with NaN (torchreid's 0 / 0 for an all-zero row): fall through
            # One stable sort of (row, value) keys; candidates come in row-major order, so ties stay by index.
            order = np.argsort(
                (rows.astype(np.uint64) << np.uint64(32)) | _sortable_bits(sign * block.ravel()[flat]), kind="stable"
            )
            return (flat[order] - rows * num_cols)[(np.cumsum(counts) - counts)[:, None] + np.arange(k)]
    keys = sign * block
    nearest = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < num_cols else np.argsort(keys, axis=1)
    values = np.take_along_axis(keys, nearest, axis=1)
    return np.take_along_axis(nearest, np.lexsort((nearest, values), axis=1), axis=1)


def _sortable_bits(values: np.ndarray) -> np.ndarray:
    """float32 values as uint64 integers in the same order (IEEE bits, negatives flipped; -0.0 just below 0.0)."""
    bits = values.view(np.uint32)
    return np.where(bits >> 31, ~bits, bits | np.uint32(1 << 31)).astype(np.uint64)
