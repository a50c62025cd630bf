"""The training log of a run, `training_log.csv`: one row per epoch, written by `hacnn_tf.callbacks.TrainingLog`.

Columns, in this order: `epoch` (1-based, as the console and the figures number epochs), `loss`, the per-output
losses (`*_loss`, sorted), the validation metrics (`val_rank1`, `val_rank5`, ..., `val_mAP`, `val_mINP`; fractions;
empty in epochs without an evaluation), `learning_rate` (the rate the epoch started with), any other logged value
(sorted), and `seconds` (the epoch's wall time, evaluation included). Floats carry `SIGNIFICANT_DIGITS` significant
digits. `read_training_log` also reads the logs of Keras' `CSVLogger` (0-based epochs, columns sorted by name).
"""

from __future__ import annotations

import math
import os
import pathlib
import re
from collections.abc import Iterable, Mapping

import pandas as pd

__all__ = [
    "LOG_FILE",
    "REQUIRED_LOG_COLUMNS",
    "SIGNIFICANT_DIGITS",
    "epoch_row",
    "format_log_value",
    "log_columns",
    "read_training_log",
]

LOG_FILE = "training_log.csv"
REQUIRED_LOG_COLUMNS = ("epoch", "loss")
SIGNIFICANT_DIGITS = 7
_RANK = re.compile(r"^val_rank(\d+)$")
_METRICS_AFTER_RANKS = ("val_mAP", "val_mINP")


def _column_key(name: str) -> tuple:
    if name == "epoch":
        return (0,)
    if name == "loss":
        return (1,)
    if name.endswith("_loss") and not name.startswith("val_"):
        return (2, name)
    if match := _RANK.match(name):
        return (3, int(match[1]))
    if name in _METRICS_AFTER_RANKS:
        return (4, _METRICS_AFTER_RANKS.index(name))
    if name == "learning_rate":
        return (6,)
    if name == "seconds":
        return (7,)
    return (5, name)


def log_columns(names: Iterable[str]) -> list[str]:
    """`names` (Keras epoch-log keys and `epoch`, `seconds`) in the log's column order (module docstring)."""
    return sorted(dict.fromkeys(names), key=_column_key)


def format_log_value(value: object) -> str:
    """One CSV cell: an int as is, a float with `SIGNIFICANT_DIGITS` significant digits, NaN/None empty."""
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, int):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "" if math.isnan(number) else str(number)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.{SIGNIFICANT_DIGITS}g}"


def read_training_log(log_csv: str | os.PathLike[str]) -> pd.DataFrame:
    """The training log `log_csv`, one row per epoch, sorted, with 1-based `epoch`.

    Needs the columns `epoch` and `loss`. A log of Keras' `CSVLogger` (its first epoch is 0) is renumbered from 1.
    A resumed run may have logged an epoch twice; the later row is kept. Raises ValueError naming the file and what
    is missing.
    """
    log_csv = pathlib.Path(log_csv)
    try:
        log = pd.read_csv(log_csv)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{log_csv}: the training log is empty") from None
    for column in REQUIRED_LOG_COLUMNS:
        if column not in log.columns:
            raise ValueError(
                f"{log_csv}: the training log has no {column!r} column "
                f"(columns: {', '.join(map(str, log.columns)) or 'none'})"
            )
    if log.empty:
        raise ValueError(f"{log_csv}: the training log has no rows")
    if log["epoch"].min() == 0:  # Keras' CSVLogger numbers epochs from 0
        log["epoch"] = log["epoch"] + 1
    log = log.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)
    return log[log_columns(log.columns)]


def epoch_row(epoch: int, logs: Mapping[str, object], seconds: float | None = None) -> dict[str, object]:
    """The log row of the 1-based `epoch`: `logs` (a Keras epoch log) with `epoch` and `seconds`."""
    row = {"epoch": int(epoch), **logs}
    if seconds is not None:
        row["seconds"] = round(float(seconds), 1)
    return row
