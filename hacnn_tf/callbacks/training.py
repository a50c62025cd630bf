"""Training callbacks: atomic model checkpoints, learning-rate logging, and the crash-safe epoch backup that resumed
runs restart from.

A backup is one folder per finished epoch, `backup/epoch-<NNNNNN>/`, holding everything a resumed run needs: the
model with its optimizer state (`model.keras`), copies of the files the other callbacks append to (the CSV log), and
`state.json` (the epoch, the best monitored value, the config, and the SHA-256 of each file). It is written into a
hidden staging folder, flushed to the disk, and committed by renaming that folder: a kill or a full disk at any
moment leaves the previous backup whole, and a backup is either all of one epoch or absent. The previous backup is
deleted only once the new one is committed. Keras' `BackupAndRestore` writes its weights file and its epoch file one
after the other in place, so a kill between or during them leaves a torn or inconsistent backup.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import pathlib
import re
import shutil
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from hacnn_tf.io_utils import (
    TRASH_PREFIX,
    atomic_output,
    fsync_path,
    remove_partial_dirs,
    remove_tree,
    staging_folder,
)
from hacnn_tf.manifest import sha256_of

logger = logging.getLogger(__name__)

BACKUP_FORMAT = 1
MODEL_FILE = "model.keras"
STATE_FILE = "state.json"
STAGING_PREFIX = ".staging-"
_BACKUP_NAME = re.compile(r"^epoch-(\d{6,})$")
# The member of a `.keras` checkpoint that records what it was saved for (epoch, monitored value).
CHECKPOINT_INFO = "hacnn_tf_checkpoint.json"


def _finite_loss(logs: Mapping | None) -> bool:
    loss = (logs or {}).get("loss")
    return loss is None or math.isfinite(float(loss))


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to a `.keras` file at each epoch end, atomically and durably (a kill mid-save keeps the
    previous file), with `CHECKPOINT_INFO` inside it: `{"epoch", "monitor", "value", **info}`.

    With `monitor`, saves only when that log value (e.g. `val_mAP`, written by `ReIDEvaluation`) beats `best`, the
    best seen so far (`mode` "max" or "min"); epochs where it was not measured are skipped quietly. Without it, skips
    (with a warning) an epoch whose loss is not finite, so that the file keeps the last usable model.
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str | None = None,
        mode: str = "max",
        info: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min'; got {mode!r}")
        self.filepath, self.monitor, self.mode = pathlib.Path(filepath), monitor, mode
        self.info = dict(info or {})
        self.best = -math.inf if mode == "max" else math.inf

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor is not None:
            value = (logs or {}).get(self.monitor)
            if value is None or not (value > self.best if self.mode == "max" else value < self.best):
                return
            self.best = float(value)
        elif not _finite_loss(logs):
            logger.warning("epoch %d: the loss is not finite, %s keeps the previous model", epoch + 1, self.filepath)
            return
        info = {"epoch": epoch + 1, "monitor": self.monitor, "value": self.best if self.monitor else None, **self.info}
        with atomic_output(self.filepath, durable=True) as tmp:
            self.model.save(tmp)
            # Through an open file: `ZipFile(path, "a")` retries a failed open as "w+b", which empties the file.
            with open(tmp, "r+b") as handle, zipfile.ZipFile(handle, "a") as archive:
                archive.writestr(CHECKPOINT_INFO, json.dumps(info))


def checkpoint_info(path: str | os.PathLike) -> dict | None:
    """The `CHECKPOINT_INFO` record of a `.keras` file written by `AtomicModelCheckpoint`; None if the file does not
    exist, is no such checkpoint, or cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(CHECKPOINT_INFO))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


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


class BackupError(RuntimeError):
    """A committed backup that cannot be used; `path` is the file at fault."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = pathlib.Path(path), reason
        super().__init__(f"{self.path}: {reason}")


@dataclasses.dataclass(frozen=True)
class Backup:
    """A committed backup folder: `epoch` epochs trained; `state` is its `state.json`."""

    directory: pathlib.Path
    epoch: int
    state: dict

    @property
    def model_path(self) -> pathlib.Path:
        return self.directory / MODEL_FILE


def committed_backups(backup_dir: str | os.PathLike) -> list[pathlib.Path]:
    """The committed backup folders in `backup_dir`, oldest epoch first."""
    backup_dir = pathlib.Path(backup_dir)
    if not backup_dir.is_dir():
        return []
    found = [
        (int(match[1]), path)
        for path in backup_dir.iterdir()
        if (match := _BACKUP_NAME.match(path.name)) and path.is_dir()
    ]
    return [path for _, path in sorted(found)]


def write_backup(
    backup_dir: str | os.PathLike,
    epoch: int,
    model: keras.Model,
    state: Mapping[str, Any],
    files: Sequence[str | os.PathLike] = (),
) -> Backup:
    """Commits the backup of `epoch` trained epochs: `model` (weights and optimizer state), copies of `files`, and
    `state` (JSON) with the epoch and the files' SHA-256, in `backup_dir/epoch-<epoch>`; then deletes the older
    backups.

    Everything is written into a staging folder beside it, flushed to the disk, and committed with one rename.
    Keras writes the weights of a `.keras` file in memory first and the file with Python's file I/O, so a full disk
    raises `OSError` (HDF5 writing to a full disk itself can crash the process). On an exception the staging folder
    is removed; a kill leaves it for `clean_backups`.
    """
    backup_dir = pathlib.Path(backup_dir)
    target = backup_dir / f"epoch-{epoch:06d}"
    with staging_folder(backup_dir, STAGING_PREFIX) as staging:
        model.save(staging / MODEL_FILE)
        names = [MODEL_FILE]
        for source in map(pathlib.Path, files):
            shutil.copyfile(source, staging / source.name)
            names.append(source.name)
        record = {
            **state,
            "format": BACKUP_FORMAT,
            "epoch": epoch,
            "files": {name: sha256_of(staging / name) for name in names},
        }
        (staging / STATE_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
        for name in (*names, STATE_FILE, "."):
            fsync_path(staging / name)
        os.rename(staging, target)  # the commit
        fsync_path(backup_dir)
    for older in committed_backups(backup_dir):
        if older != target:
            try:
                remove_tree(older)
            except OSError as error:  # committed already: the next run's `clean_backups` deletes what is left
                logger.warning("could not delete the superseded backup %s: %s", older, error)
    return Backup(target, epoch, record)


def read_backup(directory: str | os.PathLike) -> Backup:
    """The backup committed in `directory`, checked file by file against the SHA-256 it recorded; raises
    `BackupError` naming the file that is missing, unreadable, or not what was written."""
    directory = pathlib.Path(directory)
    state_path = directory / STATE_FILE
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        epoch, files = int(state["epoch"]), dict(state["files"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BackupError(state_path, f"the backup's state cannot be read ({type(error).__name__}: {error})") from None
    if state.get("format") != BACKUP_FORMAT:
        raise BackupError(state_path, f"backup format {state.get('format')!r}; this version reads {BACKUP_FORMAT}")
    if _BACKUP_NAME.match(directory.name) and int(_BACKUP_NAME.match(directory.name)[1]) != epoch:
        raise BackupError(state_path, f"records epoch {epoch}, but its folder is {directory.name}")
    for name, expected in files.items():
        path = directory / name
        try:
            actual = sha256_of(path)
        except OSError as error:
            raise BackupError(path, f"cannot be read ({error.strerror or error})") from None
        if actual != expected:
            raise BackupError(
                path, f"its content is not what was written (SHA-256 {actual[:16]}..., recorded {expected[:16]}...)"
            )
    return Backup(directory, epoch, state)


def latest_backup(backup_dir: str | os.PathLike) -> Backup | None:
    """The newest committed backup in `backup_dir` (checked by `read_backup`, whose `BackupError` it raises), or None
    if there is none. An older one is never used instead of a newer one that does not read."""
    committed = committed_backups(backup_dir)
    return read_backup(committed[-1]) if committed else None


def clean_backups(backup_dir: str | os.PathLike, keep: Backup | None) -> list[pathlib.Path]:
    """Deletes what interrupted writes left in `backup_dir`: staging folders, half-deleted folders, and committed
    backups other than `keep` (older ones whose deletion a kill interrupted). Returns what it deleted."""
    leftovers = remove_partial_dirs(backup_dir, (STAGING_PREFIX, TRASH_PREFIX))
    older = [path for path in committed_backups(backup_dir) if keep is None or path != keep.directory]
    for path in older:
        remove_tree(path)
    return leftovers + older


def restore_backup(model: keras.Model, backup: Backup) -> None:
    """Loads the weights and optimizer state of `backup` into the built `model`; `BackupError` if they do not fit
    (Keras only warns when it skips the optimizer's variables: here that is an error too)."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="Skipping variable loading")
            model.load_weights(backup.model_path)
    except Exception as error:  # Keras and h5py raise ValueError, OSError, KeyError... for a file that does not fit
        raise BackupError(
            backup.model_path, f"cannot be loaded into the configured model ({type(error).__name__}: {error})"
        ) from error


class EpochBackup(keras.callbacks.Callback):
    """Commits a backup (`write_backup`) of the model, the optimizer and `files` at every epoch end, recording
    `state`, the epoch, and the best value of the `best` checkpoint. Place it after every callback that writes at
    epoch ends (checkpoints, CSV log), so that a committed epoch is one whose outputs are all written.

    Only a process with `write=True` (the chief, or a single process) writes: in multi-worker training every worker
    restores from the chief's backup, on storage they share. An epoch whose loss is not finite, or that stopped
    before its last step (`model.stop_training` set by a callback), is not backed up (a warning says so): the backup
    keeps the last whole, usable state. The last backup stays when training ends: it records that the run is
    finished, and a run with more `train.epochs` continues from it.
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike,
        best: AtomicModelCheckpoint | None = None,
        files: Sequence[str | os.PathLike] = (),
        state: Mapping[str, Any] | None = None,
        write: bool = True,
    ):
        super().__init__()
        self.backup_dir, self.best = pathlib.Path(backup_dir), best
        self.files = [pathlib.Path(path) for path in files]
        self.state, self.write = dict(state or {}), bool(write)
        self._steps_done = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._steps_done = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._steps_done = batch + 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.write:
            return
        steps = self.params.get("steps") if self.params else None
        if not _finite_loss(logs) or (steps and self._steps_done < steps):
            reason = (
                f"stopped after {self._steps_done} of {steps} steps" if _finite_loss(logs) else "the loss is not finite"
            )
            logger.warning("epoch %d: %s; it is not backed up (the backup keeps epoch %d)", epoch + 1, reason, epoch)
            return
        best = self.best.best if self.best is not None and math.isfinite(self.best.best) else None
        try:
            write_backup(
                self.backup_dir,
                epoch + 1,
                self.model,
                {**self.state, "best": best},
                [path for path in self.files if path.is_file()],
            )
        except OSError as error:
            raise OSError(
                error.errno,
                f"Backing up epoch {epoch + 1} into {self.backup_dir} failed "
                f"({error.strerror or error}): make room and rerun the same command, which "
                f"resumes from the last backup committed",
            ) from error
