"""Identity and camera ids as exact integers: the one normalisation the data readers and the evaluation use.

Re-identification compares ids for equality (a gallery image is a true match when its identity equals the query's,
discarded when its camera does too), so two arrays of ids must meet in a type where equal ids compare equal and
different ids do not. numpy does not guarantee that across dtypes: an int64 id `2**53 + 1` and a float64 id
`2**53` compare equal (both become float64), and int64 against uint64 ids beyond 2^53 are compared, sorted and
searched as float64. Here every id array becomes an integer array first, exactly or not at all:

- integer and boolean arrays (numpy, or Python ints in an object array) keep their values;
- float arrays are accepted where every value is finite, integral and within the float type's exact integer range
  (up to 2^53 - 1 in magnitude for float64, 2^24 - 1 for float32: beyond it neighbouring integers round to the same
  float, so the float no longer says which id it was);
- anything else (strings, None, NaN, fractional values) is refused.

Two arrays that are compared with each other (query and gallery identities, or query and gallery cameras) are then
given one dtype: int64 when all their values fit it, uint64 when some value is beyond int64 and none is negative;
a negative id beside one beyond int64 has no exact common 64-bit type and is refused. Refusals are
`hacnn_tf.errors.DataError`, one line naming the array, the offending value and its position (or the file it came
from).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from hacnn_tf.errors import DataError

__all__ = ["comparable_ids", "integer_ids"]

_INT64 = np.iinfo(np.int64)
_UINT64 = np.iinfo(np.uint64)


def integer_ids(
    values: object, name: str, where: Sequence[object] | None = None, dtype: type | None = None
) -> np.ndarray:
    """`values` (a 1-D array-like of ids) as an exact integer array: int64 where every value fits it, else uint64
    when every value is non-negative and below 2^64 (with `dtype=np.int64`, values beyond int64 are refused).

    Args:
        values: the ids: integers, booleans, integral floats within the float type's exact range, or Python
            numbers in an object array (a pandas column's `to_numpy()`).
        name: what the ids are, for the message (`"g_pids (gallery identities)"`, `"train pid"`).
        where: per value, where it came from (a file path, a CSV line); the message names the offending value's
            entry instead of its position.
        dtype: `np.int64` to require the int64 range (the data readers' columns); None for int64 or uint64.

    Returns:
        An int64 or uint64 array of the same length and values.

    Raises:
        DataError: a value that is not an integer or not exactly representable, naming it and where it is.

    Example:
        >>> integer_ids(np.array([3.0, 7.0]), "g_pids").dtype
        dtype('int64')
    """
    array = np.asarray(values)
    kind = array.dtype.kind
    if kind in "iub":
        exact = array.astype(np.int64) if kind == "b" else array
    elif kind == "f":
        exact = _float_ids(array, name, where)
    elif kind == "O":
        exact = _object_ids(array, name, where)
    else:
        value = array[0] if array.size else None
        raise DataError(
            f"{name}: ids must be integers, got dtype {array.dtype} (first value {value!r}); convert "
            f"them with int(...) or a numeric column"
        )
    if exact.dtype.kind == "u" and exact.size and exact.max() > _INT64.max:
        if dtype is not None and np.dtype(dtype) == np.int64:
            index = int(np.argmax(exact))
            raise DataError(
                f"{name}: id {int(exact[index])} {_at(index, where)} is beyond the int64 range (at most {_INT64.max})"
            )
        return exact.astype(np.uint64)
    return exact.astype(np.int64)


def comparable_ids(query: object, gallery: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Query and gallery ids (identities, or cameras) as exact integer arrays of one dtype, so that `==`, sorting
    and `np.searchsorted` between them are exact.

    Args:
        query: the query ids (1-D array-like).
        gallery: the gallery ids (1-D array-like).
        name: the ids' name in the messages: `"pids"` for `q_pids` / `g_pids`, `"camids"`.

    Returns:
        `(query, gallery)`, both int64, or both uint64 where some id is beyond int64 and none is negative.

    Raises:
        DataError: an id that `integer_ids` refuses, or a negative id in one array beside one beyond int64 in the
            other (no 64-bit integer type holds both), naming query/gallery and the values.
    """
    arrays = {
        "query": integer_ids(query, f"q_{name} (query ids)"),
        "gallery": integer_ids(gallery, f"g_{name} (gallery ids)"),
    }
    if all(array.dtype == np.int64 for array in arrays.values()):
        return arrays["query"], arrays["gallery"]
    negative = {
        role: array for role, array in arrays.items() if array.dtype == np.int64 and array.size and array.min() < 0
    }
    if negative:
        ((signed_role, signed),) = negative.items()
        unsigned_role = "gallery" if signed_role == "query" else "query"
        unsigned = arrays[unsigned_role]
        raise DataError(
            f"{name}: {signed_role} id {int(signed.min())} (position {int(np.argmin(signed))}) is "
            f"negative and {unsigned_role} id {int(unsigned.max())} (position {int(np.argmax(unsigned))}) "
            f"is beyond int64: no 64-bit integer type holds both exactly; renumber the ids into the "
            f"int64 range"
        )
    return arrays["query"].astype(np.uint64), arrays["gallery"].astype(np.uint64)


def _at(index: int, where: Sequence[object] | None) -> str:
    return f"at position {index}" if where is None else f"in {where[index]}"


def _float_ids(array: np.ndarray, name: str, where: Sequence[object] | None) -> np.ndarray:
    """Integral floats within the float type's exact integer range, as int64."""
    if not array.size:
        return np.zeros(0, np.int64)
    exact_limit = 2 ** (np.finfo(array.dtype).nmant + 1) - 1
    bad = ~np.isfinite(array)
    if not bad.any():
        bad = array != np.trunc(array)
    reason = "is not an integer: an id is an integer and a fractional one would be truncated or merge identities"
    if not bad.any():
        bad = np.abs(array) > exact_limit
        reason = (
            f"is beyond 2^{np.finfo(array.dtype).nmant + 1} - 1 = {exact_limit}, where {array.dtype} stops "
            f"telling neighbouring integers apart; pass the ids as integers (int64)"
        )
    if bad.any():
        index = int(np.argmax(bad))
        raise DataError(f"{name}: {array.dtype} id {array[index].item()!r} {_at(index, where)} {reason}")
    return array.astype(np.int64)


def _object_ids(array: np.ndarray, name: str, where: Sequence[object] | None) -> np.ndarray:
    """An object array of Python/numpy integers (or floats) as an exact integer array."""
    if all(isinstance(value, numbers.Integral) for value in array):
        integers = [int(value) for value in array]
        if not integers:
            return np.zeros(0, np.int64)
        low, high = min(integers), max(integers)
        if low >= _INT64.min and high <= _INT64.max:
            return np.array(integers, dtype=np.int64)
        if low >= 0 and high <= _UINT64.max:
            return np.array(integers, dtype=np.uint64)
        index = integers.index(high if high > _INT64.max else low)
        raise DataError(
            f"{name}: id {integers[index]} {_at(index, where)} is outside the 64-bit integer range"
            + (" beside a negative id" if low < 0 and high <= _UINT64.max else "")
        )
    if all(isinstance(value, numbers.Real) for value in array):
        return _float_ids(np.array([float(value) for value in array], dtype=np.float64), name, where)
    index = next(i for i, value in enumerate(array) if not isinstance(value, numbers.Real))
    raise DataError(f"{name}: id {array[index]!r} {_at(index, where)} is not a number; ids must be integers")
