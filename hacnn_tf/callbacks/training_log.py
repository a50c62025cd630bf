"""`TrainingLog`: the Keras callback that writes a run's `training_log.csv` (format: `hacnn_tf.training_log`)."""

from __future__ import annotations

import csv
import io
import os
import pathlib
import time

import keras

from hacnn_tf.training_log import epoch_row, format_log_value, log_columns

__all__ = ["TrainingLog"]


class TrainingLog(keras.callbacks.Callback):
    """Appends one row per epoch to the CSV file `path`: the epoch (1-based), the epoch's logs in the column order
    of `hacnn_tf.training_log`, rounded, and the epoch's wall time (`seconds`). Each row is written with one
    `write` on a file opened for appending and closed again, so that the file always ends with a whole row (a
    torn last row is possible only if the process dies inside that write).

    Place it after the callbacks that add to the epoch logs (learning rate, re-id metrics). Without `append` the file
    is emptied when training begins and the first row's keys fix the columns; with `append` (a resumed run) rows
    are added under the existing header, keys it lacks left out and its columns that a row lacks left empty (and
    numbered from 0 if the file was begun by Keras' `CSVLogger`, so that a run resumed across versions keeps one
    numbering; `read_training_log` renumbers such a log from 1).

    Args:
        path: the CSV file.
        append: add to the file's rows instead of starting it again.
    """

    def __init__(self, path: str | os.PathLike, append: bool = False):
        super().__init__()
        self.path, self.append = pathlib.Path(path), bool(append)
        self.columns: list[str] | None = None
        self.first_epoch_number = 1  # 0 when appending to a log of Keras' CSVLogger, which counts from 0
        self._epoch_started = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.columns, self.first_epoch_number = None, 1
        if self.append and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as handle:
                rows = csv.reader(handle)
                header, first = next(rows, None), next(rows, None)
            self.columns = header or None
            if header and first and "epoch" in header and first[header.index("epoch")] == "0":
                self.first_epoch_number = 0
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", encoding="utf-8"):
                pass

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = None if self._epoch_started is None else time.perf_counter() - self._epoch_started
        row = epoch_row(epoch + self.first_epoch_number, dict(logs or {}), seconds)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        if self.columns is None:
            self.columns = log_columns(row)
            writer.writerow(self.columns)
        writer.writerow([format_log_value(row.get(column)) for column in self.columns])
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            handle.write(text.getvalue())
