"""A training run's folder (`output.dir`): what it holds, whether a new `fit` may resume it, and how it starts over.

The folder holds `config.yaml` (the config of the last start), `best.keras`, `last.keras`, `training_log.csv`,
`tensorboard/` and `backup/` (`backup/lock`, held by the process training into it, and `backup/epoch-<N>/`, the last
committed epoch: see `hacnn_tf.callbacks.EpochBackup`). The backup's state records the config and the fingerprint of
the data set (`DataFingerprint`) of the run. A run resumes only with the same run-defining settings
(`run_definition`) and on the same data; anything else is refused with one line naming both sides, and
`--overwrite` (`start_over`) or another `output.dir` starts a new run. Nothing here deletes a run: starting over
moves it aside.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import shutil
from collections.abc import Iterator, Mapping
from typing import Any

import keras
import yaml

from hacnn_tf.callbacks import (
    MODEL_FILE,
    Backup,
    BackupError,
    checkpoint_info,
    clean_backups,
    committed_backups,
    latest_backup,
)
from hacnn_tf.config import Config
from hacnn_tf.data.datasets import ReIDDataset
from hacnn_tf.errors import ConfigError
from hacnn_tf.io_utils import atomic_output, exclusive_lock, move_aside, remove_partial_files
from hacnn_tf.training_log import LOG_FILE, read_training_log

logger = logging.getLogger(__name__)

BACKUP_DIR = "backup"
LOCK_FILE = "lock"
CONFIG_FILE = "config.yaml"
# What a run writes into output.dir besides config.yaml, backup/ and tensorboard/.
RUN_OUTPUTS = ("best.keras", "last.keras", LOG_FILE)
# Run-defining fields that a resumed run may change: a larger train.epochs continues a finished run.
RESUMABLE_FIELDS = ("train.epochs", "train.jit_compile")


@dataclasses.dataclass(frozen=True)
class DataFingerprint:
    """What identifies the data set a run trains on.

    `name` is the reader, `root` the data set's folder (`data.root`, resolved; the training images' folder for a
    data set handed to `fit` without one), `identities` and `images` the training identities and images, and
    `sha256` a hash of the sorted training files (path relative to their common folder, size in bytes, identity
    label, camera): the same files and labels give the same hash wherever the folder is, other images or labels
    another one.
    """

    name: str
    root: str
    identities: int
    images: int
    sha256: str

    def describe(self) -> str:
        return (
            f"{self.name} at {self.root} ({self.identities} identities, {self.images} training images, files "
            f"sha256 {self.sha256[:12]})"
        )

    def same_data(self, other: DataFingerprint) -> bool:
        """Whether `other` is the same training data, possibly in another folder."""
        return (self.name, self.identities, self.images, self.sha256) == (
            other.name,
            other.identities,
            other.images,
            other.sha256,
        )

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> DataFingerprint:
        return cls(**{field.name: fields[field.name] for field in dataclasses.fields(cls)})


def data_fingerprint(dataset: ReIDDataset, root: str | os.PathLike | None = None) -> DataFingerprint:
    """The `DataFingerprint` of `dataset`'s training split, read from `root` (one `stat` per image, no image is
    read)."""
    train = dataset.train
    paths = [os.path.abspath(path) for path in train["path"]]
    folder = os.path.commonpath([os.path.dirname(path) for path in paths]) if paths else ""
    digest = hashlib.sha256()
    rows = sorted(zip((os.path.relpath(path, folder) for path in paths), paths, train["pid"], train["camid"]))
    for relative, path, pid, camid in rows:
        size = os.stat(path).st_size if os.path.exists(path) else -1
        digest.update(f"{relative}\t{size}\t{int(pid)}\t{int(camid)}\n".encode())
    where = os.path.realpath(root if root is not None else folder)
    return DataFingerprint(dataset.name, where, int(train["pid"].nunique()), len(train), digest.hexdigest())


def run_definition(config: Config) -> dict[str, Any]:
    """The config fields that a resumed run must share with the run it continues (`section.field`: value): all that
    changes what is trained (data set reader, model, losses, batches, augmentation, optimizer, schedule), except
    `RESUMABLE_FIELDS`. `data.root` (the data are compared by their `DataFingerprint`), evaluation, output and
    distribution may change."""
    sections = config.to_dict()
    fields = {"data.name": sections["data"]["name"], "data.options": sections["data"]["options"]}
    for section in ("model", "loss", "train", "optimizer", "schedule"):
        fields.update(
            {
                f"{section}.{key}": value
                for key, value in sections[section].items()
                if f"{section}.{key}" not in RESUMABLE_FIELDS
            }
        )
    return fields


def run_fingerprint(config: Config, data: DataFingerprint | None = None) -> str:
    """A SHA-256 of `run_definition` and the data's hash: checkpoints record it, so that a run recognises its own."""
    definition = {**run_definition(config), "data": None if data is None else [data.identities, data.sha256]}
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


def backup_state(config: Config, data: DataFingerprint | None) -> dict[str, Any]:
    """What each backup of the run records besides its epoch: the config and the data's fingerprint."""
    return {"config": config.to_dict(), "data": None if data is None else dataclasses.asdict(data)}


@dataclasses.dataclass(frozen=True)
class RunState:
    """What a run starts from: the `backup` it resumes (None: epoch 0), `best`, the `val_mAP` that `best.keras`
    holds (None: no best checkpoint yet; `best.keras` is replaced only by a better model), and `data`, the
    fingerprint of the data it trains on (None: not checked)."""

    backup: Backup | None
    best: float | None
    data: DataFingerprint | None = None

    @property
    def initial_epoch(self) -> int:
        return self.backup.epoch if self.backup is not None else 0


def advice(output_dir: pathlib.Path) -> str:
    """How to start over instead: the end of every refusal."""
    return (
        f"rerun with --overwrite (hacnn-tf fit ... --overwrite, or fit(..., overwrite=True)) to move "
        f"{output_dir} aside and start over, or choose another output.dir"
    )


def refuse_foreign(output_dir: pathlib.Path) -> None:
    """Raises `FileExistsError` if `output_dir` holds a run that this version cannot resume, which it would
    otherwise overwrite: outputs without a `backup/` folder, or a backup in Keras' `BackupAndRestore` format."""
    backup_dir = output_dir / BACKUP_DIR
    legacy = [name for name in ("training_metadata.json", "latest.weights.h5") if (backup_dir / name).exists()]
    if legacy and not committed_backups(backup_dir):
        raise FileExistsError(
            f"{backup_dir / legacy[0]} is a backup in the format of Keras' BackupAndRestore "
            f"(an earlier hacnn_tf), which this version cannot resume: {advice(output_dir)}"
        )
    outputs = [name for name in RUN_OUTPUTS if (output_dir / name).exists()]
    if outputs and not backup_dir.is_dir():
        raise FileExistsError(
            f"output.dir {output_dir} holds a run ({', '.join(outputs)}) without the {BACKUP_DIR}/ "
            f"folder that resuming needs (finished under an earlier version, or its backup was "
            f"deleted); refusing to overwrite it: {advice(output_dir)}"
        )


def unusable(error: BackupError, output_dir: pathlib.Path) -> BackupError:
    """`error` (a backup that does not read or load) with what to do: start over, or resume from an older one."""
    committed = committed_backups(output_dir / BACKUP_DIR)
    older = (
        f", or delete {committed[-1]} to resume from {committed[-2].name}"
        if len(committed) > 1 and error.path.is_relative_to(committed[-1])
        else ""
    )
    return BackupError(
        error.path, f"{error.reason}. The run cannot resume from this backup: {advice(output_dir)}{older}"
    )


def _check_data(backup: Backup, data: DataFingerprint, output_dir: pathlib.Path) -> None:
    """Raises `ConfigError` unless the run of `backup` trained on `data` (a backup of an earlier version, which
    recorded no fingerprint, is resumed with a warning)."""
    recorded = backup.state.get("data")
    if recorded is None:
        logger.warning(
            "the backup %s records no data fingerprint (written by an earlier version): resuming "
            "without checking that %s is the data set the run trained on",
            backup.directory,
            data.root,
        )
        return
    recorded = DataFingerprint.from_dict(recorded)
    resume = f"rerun with data.root={recorded.root} to resume it, or {advice(output_dir)}"
    if recorded.identities != data.identities:
        raise ConfigError(
            f"output.dir {output_dir} holds a run trained on {recorded.identities} identities "
            f"({recorded.describe()}), but this data set has {data.identities} ({data.describe()}): a "
            f"run resumes only on the data it trained on; {resume}"
        )
    if not recorded.same_data(data):
        raise ConfigError(
            f"output.dir {output_dir} holds a run trained on other data: {recorded.describe()}; now "
            f"{data.describe()}; {resume}"
        )
    if recorded.root != data.root:
        logger.info("the data set moved from %s to %s (same files and labels)", recorded.root, data.root)


def _check_settings(backup: Backup, config: Config, output_dir: pathlib.Path) -> None:
    """Raises `ConfigError` unless `config` defines the run of `backup` (`run_definition`)."""
    try:
        recorded = Config.from_dict(backup.state["config"])
    except ConfigError as error:
        raise ConfigError(
            f"{backup.directory}: the run's recorded config does not read in this version ({error}): "
            f"{advice(output_dir)}"
        ) from None
    before, now = run_definition(recorded), run_definition(config)
    changed = [
        f"{name}: {before.get(name)!r} -> {now.get(name)!r}"
        for name in sorted({*before, *now})
        if before.get(name) != now.get(name)
    ]
    if changed:
        raise ConfigError(
            f"output.dir {output_dir} holds a run of {backup.epoch} epochs trained with other "
            f"settings, which resuming cannot change ({'; '.join(changed)}): rerun with the run's "
            f"settings (its {CONFIG_FILE}) to resume it, or {advice(output_dir)}"
        )


def _read_run(config: Config, output_dir: pathlib.Path, data: DataFingerprint | None) -> RunState:
    """The `RunState` of `output_dir`, read without writing anything."""
    try:
        backup = latest_backup(output_dir / BACKUP_DIR)
    except BackupError as error:
        raise unusable(error, output_dir) from None
    if backup is not None:
        if data is not None:
            _check_data(backup, data, output_dir)
        if "config" in backup.state:
            _check_settings(backup, config, output_dir)
    best = backup.state.get("best") if backup is not None else None
    info = checkpoint_info(output_dir / "best.keras")
    if info is not None and info.get("run") == run_fingerprint(config, data) and info.get("value") is not None:
        # best.keras is written before the backup that records its value: after a kill in between it is ahead.
        best = info["value"] if best is None else max(best, info["value"])
    return RunState(backup, best, data)


def _restore_logged_files(run: RunState, output_dir: pathlib.Path) -> None:
    """Puts the files the backup copied (the CSV log) back as they were when it was committed."""
    for name in run.backup.state["files"]:
        saved, live = run.backup.directory / name, output_dir / name
        if name != MODEL_FILE and (not live.is_file() or live.read_bytes() != saved.read_bytes()):
            with atomic_output(live, durable=True) as tmp:
                shutil.copyfile(saved, tmp)


@contextlib.contextmanager
def open_run(config: Config, data: DataFingerprint | None = None, write: bool = True) -> Iterator[RunState]:
    """Opens the run in `config.output.dir` for training on `data`; yields its `RunState`.

    With `write` (the chief, or a single process), holds `backup/lock` for the `with` block (a second process
    training into the same folder fails at once), deletes what interrupted writes left (partial checkpoints,
    staging folders, superseded backups), and puts the files the backup copied (the CSV log) back as they were when
    it was committed. Raises `FileExistsError` for a run it cannot resume (`refuse_foreign`), `BackupError` naming
    the file for a backup that does not read, and `ConfigError` for a run trained with other settings or, when
    `data` is given, on other data.
    """
    output_dir = pathlib.Path(config.output.dir)
    backup_dir = output_dir / BACKUP_DIR
    refuse_foreign(output_dir)
    if not write:
        yield _read_run(config, output_dir, data)
        return
    backup_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(backup_dir / LOCK_FILE):
        removed = remove_partial_files(output_dir)
        run = _read_run(config, output_dir, data)
        removed += clean_backups(backup_dir, run.backup)
        if removed:
            logger.info(
                "removed what interrupted writes left in %s: %s",
                output_dir,
                ", ".join(str(path.relative_to(output_dir)) for path in removed),
            )
        if run.backup is not None:
            _restore_logged_files(run, output_dir)
        yield run


def start_over(output_dir: str | os.PathLike) -> pathlib.Path | None:
    """Moves the run in `output_dir` aside to `<output_dir>.old-<time>` (nothing is deleted), unless that folder is
    empty or missing; returns where it went."""
    output_dir = pathlib.Path(output_dir)
    if not output_dir.is_dir() or not any(output_dir.iterdir()):
        return None
    backup_dir = output_dir / BACKUP_DIR
    with exclusive_lock(backup_dir / LOCK_FILE) if backup_dir.is_dir() else contextlib.nullcontext():
        moved = move_aside(output_dir)
    logger.warning("moved the previous run in %s aside to %s", output_dir, moved)
    return moved


def write_config(config: Config, output_dir: pathlib.Path) -> None:
    """Writes `output_dir/config.yaml` (atomically): the config this start of the run trains with."""
    with atomic_output(output_dir / CONFIG_FILE, durable=True) as tmp:
        tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


def logged_history(path: str | os.PathLike) -> keras.callbacks.History:
    """A `History` read back from a run's `training_log.csv`: `epoch` and `history` as `model.fit` returned them."""
    history = keras.callbacks.History()
    log = read_training_log(path)
    history.epoch = [int(epoch) - 1 for epoch in log["epoch"]]  # the log counts from 1, Keras from 0
    history.history = {name: log[name].tolist() for name in log.columns if name not in ("epoch", "seconds")}
    return history
