"""Training callbacks: atomic model checkpoints, learning-rate logging, chief-only backups."""

from __future__ import annotations

import math
import os

import keras

from hacnn_tf.io_utils import save_model_atomically


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to a `.keras` file at each epoch end, atomically (a kill mid-save keeps the previous file).

    With `monitor`, saves only when that log value (e.g. `val_mAP`, written by `ReIDEvaluation`) beats the best seen
    so far (`mode` "max" or "min"); epochs where it was not measured are skipped quietly.
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str | None = None, mode: str = "max"):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min'; got {mode!r}")
        self.filepath, self.monitor, self.mode = filepath, monitor, mode
        self.best = -math.inf if mode == "max" else math.inf

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor is not None:
            value = (logs or {}).get(self.monitor)
            if value is None or not (value > self.best if self.mode == "max" else value < self.best):
                return
            self.best = float(value)
        save_model_atomically(self.model, self.filepath)


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate the epoch started with (schedules evaluated) to the epoch logs."""

    def __init__(self):
        super().__init__()
        self.rate = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self.rate


class ChiefBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` in which only the chief writes.

    Keras 3's callback has no multi-worker mode: every worker would write the same backup files and delete the
    directory at the end. Here every worker restores from `backup_dir` at the start of training (in multi-worker
    training it must be on storage all workers share, so that they resume at the same epoch with the same
    weights), but only a process with `write=True` (the chief, or a single process) backs up into it and deletes it
    once training has finished; the other workers skip both. Their weights equal the chief's at every step.
    """

    def __init__(self, backup_dir: str | os.PathLike, write: bool = True, save_freq: str | int = "epoch"):
        super().__init__(str(backup_dir), save_freq=save_freq)
        self.write = bool(write)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.write:
            super().on_epoch_end(epoch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.write:
            super().on_train_batch_end(batch, logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.write:
            super().on_train_end(logs)
