"""Configuration-driven training with `model.fit`: the library behind `training/fit.py` and `make demo`.

A run lives in its `output.dir`. `fit` checks the config and the data before the first step, resumes a run from the
last epoch its backup committed (`hacnn_tf.callbacks.EpochBackup`), does nothing for a finished run (a larger
`train.epochs` continues it), and never overwrites a run it cannot resume: `overwrite=True` moves that aside first.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import math
import numbers
import os
import pathlib
import re
import shutil
import tempfile
from typing import Any, Callable, Iterator, Mapping, Sequence

import keras
import pandas as pd
import yaml

from hacnn_tf import distribute
from hacnn_tf.callbacks import (MODEL_FILE, AtomicModelCheckpoint, Backup, BackupError, EpochBackup,
                                LearningRateLogger, checkpoint_info, clean_backups, committed_backups, latest_backup,
                                restore_backup)
from hacnn_tf.data.datasets import ReIDDataset, load_dataset
from hacnn_tf.data.pipeline import epoch_plan, make_train_dataset
from hacnn_tf.callbacks import ReIDEvaluation
from hacnn_tf.io_utils import atomic_output, exclusive_lock, move_aside, remove_partial_files
from hacnn_tf.losses import hacnn_losses
from hacnn_tf.model import HACNN

logger = logging.getLogger(__name__)

DEFAULT_CONFIG: dict[str, dict[str, Any]] = {
    "data": {"name": "market1501", "root": None, "options": {}},
    "model": {"input_size": [160, 64], "learn_region": True, "num_regions": 4, "feat_dim": 512,
              "nchannels": [128, 256, 384], "align_corners": False},
    "loss": {"softmax": True, "triplet": False, "weight_x": 1.0, "weight_t": 1.0, "label_smoothing": 0.1,
             "margin": 0.3},
    "train": {"epochs": 150, "batch_size": 32, "num_instances": None, "flip": True, "translate": True,
              "random_erasing": False, "seed": 0, "jit_compile": False},
    # Adam 5e-4 (the paper). weight_decay is Keras' decoupled decay, not torch's coupled L2 (HACNN.md §8.9).
    "optimizer": {"name": "adam", "learning_rate": 5e-4, "weight_decay": 5e-4, "beta_1": 0.9, "beta_2": 0.999,
                  "momentum": 0.9, "nesterov": False},
    # Step decay at fractions of training (torchreid's multistep); empty milestones keep the rate constant.
    "schedule": {"milestones": [], "gamma": 0.1},
    "eval": {"every": 10, "metric": "euclidean", "ranks": [1, 5, 10, 20], "batch_size": 64},
    "output": {"dir": "runs/hacnn", "tensorboard": True},
    # tf.distribute strategy: default | mirrored | multi_worker (TF_CONFIG); see hacnn_tf/distribute.py.
    "distribute": dict(distribute.DEFAULTS),
}


BACKUP_DIR = "backup"
LOCK_FILE = "lock"
# What a run writes into output.dir besides config.yaml, backup/ and tensorboard/.
RUN_OUTPUTS = ("best.keras", "last.keras", "training_log.csv")
# Run-defining fields that a resumed run may change: a larger train.epochs continues a finished run.
RESUMABLE_FIELDS = ("train.epochs", "train.jit_compile")


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `5e-4` and `1.0e3` as numbers as YAML 1.2 does (PyYAML's YAML 1.1 rules want a
    dot and a signed exponent, and leave `5e-4` a string)."""


_ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                    re.compile(r"^[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def _merge(base: dict, update: Mapping, path: str = "") -> dict:
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in base:
            raise ValueError(f"Unknown config field {where!r}; expected one of {sorted(base)}")
        if isinstance(base[key], dict) and key != "options":
            if not isinstance(value, Mapping):
                raise ValueError(f"Config field {where!r} must be a mapping; got {value!r}")
            _merge(base[key], value, f"{where}.")
        else:
            base[key] = value
    return base


def _read_config_file(path: pathlib.Path, config: dict, chain: tuple[pathlib.Path, ...] = ()) -> None:
    """Merges `path` into `config`, after the files its `base` field names (relative to it, applied in order)."""
    if not path.is_file():
        raise FileNotFoundError(f"Config file not found: {path}")
    if path.resolve() in chain:
        raise ValueError(f"Config files include each other: {' -> '.join(map(str, (*chain, path)))}")
    with open(path, encoding="utf-8") as handle:
        loaded = json.load(handle) if path.suffix == ".json" else yaml.load(handle, Loader=_ConfigLoader)
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path}: a config must be a mapping of sections; got {type(loaded).__name__}")
    loaded = dict(loaded)
    bases = loaded.pop("base", [])
    for base in [bases] if isinstance(bases, str) else bases:
        _read_config_file(path.parent / base, config, (*chain, path.resolve()))
    try:
        _merge(config, loaded)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> dict:
    """The default configuration, updated by a YAML/JSON file and `section.field=value` overrides (YAML values),
    checked by `validate_config`.

    A file may start from others: `base: ../recipes/paper.yaml` (or a list), paths relative to the file.
    """
    config = copy.deepcopy(DEFAULT_CONFIG)
    if path is not None:
        _read_config_file(pathlib.Path(path), config)
    for item in overrides:
        key, separator, raw = item.partition("=")
        if not separator or "." not in key:
            raise ValueError(f"Override {item!r} must look like section.field=value")
        nested: dict = {}
        cursor = nested
        *parents, leaf = key.split(".")
        for part in parents:
            cursor = cursor.setdefault(part, {})
        cursor[leaf] = yaml.load(raw, Loader=_ConfigLoader)
        _merge(config, nested)
    validate_config(config)
    return config


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _ints(value: Any, length: int, ok: Callable[[int], bool]) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == length and all(_is_int(v) and ok(v) for v in value)


def _milestone(value: Any) -> bool:
    return _is_number(value) and (0 < value < 1 or (value >= 1 and float(value).is_integer()))


_BOOLEAN = (lambda v: isinstance(v, bool), "true or false")
_POSITIVE_INT = (lambda v: _is_int(v) and v > 0, "a positive integer")
_NON_NEGATIVE = (lambda v: _is_number(v) and v >= 0, "a number >= 0")
_FRACTION = (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
_PATH = (lambda v: isinstance(v, (str, os.PathLike)) and str(v) != "", "a non-empty path")
# Each config field: (check, what it must be). `validate_config` reports a failed check as
# "<field> must be <what it must be>; got <value>".
CONFIG_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "data.name": (lambda v: isinstance(v, str) and v != "", "a data set name such as 'market1501'"),
    "data.root": (lambda v: v is None or _PATH[0](v), "the data set's folder, or null"),
    "data.options": (lambda v: isinstance(v, Mapping), "a mapping of data set reader options"),
    "model.input_size": (lambda v: _ints(v, 2, lambda n: n > 0 and n % 32 == 0),
                         "[height, width], positive multiples of 32"),
    "model.learn_region": _BOOLEAN,
    "model.num_regions": _POSITIVE_INT,
    "model.feat_dim": _POSITIVE_INT,
    "model.nchannels": (lambda v: _ints(v, 3, lambda n: n > 0 and n % 16 == 0),
                        "three channel counts, positive multiples of 16 (the channel attention reduces by 16)"),
    "model.align_corners": _BOOLEAN,
    "loss.softmax": _BOOLEAN,
    "loss.triplet": _BOOLEAN,
    "loss.weight_x": _NON_NEGATIVE,
    "loss.weight_t": _NON_NEGATIVE,
    "loss.label_smoothing": _FRACTION,
    "loss.margin": _NON_NEGATIVE,
    "train.epochs": _POSITIVE_INT,
    "train.batch_size": _POSITIVE_INT,
    "train.num_instances": (lambda v: v is None or (_is_int(v) and v >= 2),
                            "null (uniform batches) or an integer >= 2 (K images per identity in P x K batches)"),
    "train.flip": _BOOLEAN,
    "train.translate": _BOOLEAN,
    "train.random_erasing": _BOOLEAN,
    "train.seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "train.jit_compile": _BOOLEAN,
    "optimizer.name": (lambda v: isinstance(v, str) and v.lower() in ("adam", "sgd"), "'adam' or 'sgd'"),
    "optimizer.learning_rate": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "optimizer.weight_decay": _NON_NEGATIVE,
    "optimizer.beta_1": _FRACTION,
    "optimizer.beta_2": _FRACTION,
    "optimizer.momentum": _FRACTION,
    "optimizer.nesterov": _BOOLEAN,
    "schedule.milestones": (lambda v: isinstance(v, (list, tuple)) and all(map(_milestone, v))
                            and all(a < b for a, b in zip(v, v[1:])),
                            "an increasing list of fractions of the epochs (0 < m < 1) or epoch numbers (integers)"),
    "schedule.gamma": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "eval.every": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (0: after the last epoch only)"),
    "eval.metric": (lambda v: v in ("euclidean", "cosine"), "'euclidean' or 'cosine'"),
    "eval.ranks": (lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(_is_int(k) and k > 0 for k in v),
                   "a non-empty list of positive integers"),
    "eval.batch_size": _POSITIVE_INT,
    "output.dir": _PATH,
    "output.tensorboard": _BOOLEAN,
}


def validate_config(config: Mapping) -> None:
    """Raises `ValueError`, naming the field and its value, for a config `fit` cannot train from start to end: a
    field of the wrong type or out of range (`CONFIG_FIELDS`, and the `distribute` section), or fields that do not
    go together (no loss; triplet loss without P x K batches; a batch that is not whole identities).

    `load_config` and `fit` call it, so that a bad value fails at once instead of after hours of training.
    """
    for name, (check, expected) in CONFIG_FIELDS.items():
        section, field = name.split(".")
        if not isinstance(config.get(section), Mapping) or field not in config[section]:
            raise ValueError(f"{name} is missing from the config")
        value = config[section][field]
        if not check(value):
            raise ValueError(f"{name} must be {expected}; got {value!r}")
    distribute.validate_config({**distribute.DEFAULTS, **config.get("distribute", {})})
    loss, train = config["loss"], config["train"]
    if not (loss["softmax"] or loss["triplet"]):
        raise ValueError("loss.softmax and loss.triplet are both false: at least one loss must be on")
    batch_size, instances = train["batch_size"], train["num_instances"]
    if loss["triplet"] and instances is None:
        raise ValueError("loss.triplet needs P x K batches (K >= 2 images of each identity): set "
                         "train.num_instances, e.g. 4; got null")
    if instances is not None and batch_size % instances:
        raise ValueError(f"train.batch_size must be a multiple of train.num_instances ({instances}), so that a "
                         f"P x K batch holds whole identities; got {batch_size}")
    if loss["triplet"] and instances is not None and batch_size // instances < 2:
        raise ValueError(f"train.batch_size must hold at least 2 identities of train.num_instances ({instances}) "
                         f"images, or the triplet loss has no negatives; got {batch_size}")


def check_data(config: Mapping, dataset: ReIDDataset) -> None:
    """Raises `ValueError`, naming the fields, if training or its evaluation would fail on this data set: fewer
    training images than a batch, fewer training identities than a P x K batch, ranks deeper than the gallery, or no
    query whose identity the gallery holds under another camera (Rank-k and mAP would be undefined)."""
    train, ranks = config["train"], list(config["eval"]["ranks"])
    images, identities = len(dataset.train), dataset.train["pid"].nunique()
    if images < train["batch_size"]:
        raise ValueError(f"train.batch_size must not exceed the {images} training images; got {train['batch_size']}")
    if train["num_instances"] and identities < train["batch_size"] // train["num_instances"]:
        raise ValueError(f"train.batch_size / train.num_instances = {train['batch_size'] // train['num_instances']} "
                         f"identities per P x K batch, but the training set has {identities}")
    if len(dataset.query) == 0 or len(dataset.gallery) == 0:
        raise ValueError(f"the evaluation needs query and gallery images; the data set has {len(dataset.query)} "
                         f"queries and {len(dataset.gallery)} gallery images")
    if max(ranks) > len(dataset.gallery):
        raise ValueError(f"eval.ranks must not exceed the {len(dataset.gallery)} gallery images; got {ranks}")
    pairs = dataset.query[["pid", "camid"]].merge(dataset.gallery[["pid", "camid"]], on="pid")
    if not (pairs["camid_x"] != pairs["camid_y"]).any():
        raise ValueError(f"no query identity is in the gallery under another camera ({len(dataset.query)} queries, "
                         f"{len(dataset.gallery)} gallery images): Rank-k and mAP are undefined, the evaluation "
                         f"would fail after the first evaluated epoch")


def build_optimizer(config: Mapping, steps_per_epoch: int, epochs: int) -> keras.optimizers.Optimizer:
    """Adam or SGD with a multistep learning-rate schedule (milestones < 1 are fractions of the epochs)."""
    opt, schedule = config["optimizer"], config["schedule"]
    base = float(opt["learning_rate"])
    # The rate of update `i` is read at `iterations == i`; decay starts with the first update of the milestone epoch.
    boundaries = [int(round(m * epochs if m < 1 else m)) * steps_per_epoch - 1 for m in schedule["milestones"]]
    if boundaries:
        values = [base * float(schedule["gamma"]) ** i for i in range(len(boundaries) + 1)]
        learning_rate = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    else:
        learning_rate = base
    name = opt["name"].lower()
    decay = float(opt["weight_decay"]) or None
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, beta_1=opt["beta_1"], beta_2=opt["beta_2"], weight_decay=decay)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=opt["momentum"], nesterov=opt["nesterov"],
                                    weight_decay=decay)
    raise ValueError(f"optimizer.name must be 'adam' or 'sgd'; got {opt['name']!r}")


def build_model(config: Mapping, num_classes: int) -> HACNN:
    model_config = dict(config["model"])
    return HACNN(num_classes if config["loss"]["softmax"] else None, **model_config)


def configured_losses(config: Mapping, learn_region: bool) -> tuple[dict, dict]:
    """The `(loss, loss_weights)` dictionaries the `loss` section asks for (keys: the outputs that take labels)."""
    loss = config["loss"]
    return hacnn_losses(softmax=loss["softmax"], triplet=loss["triplet"], weight_x=loss["weight_x"],
                        weight_t=loss["weight_t"], label_smoothing=loss["label_smoothing"], margin=loss["margin"],
                        learn_region=learn_region)


def train_dataset(config: Mapping, dataset: ReIDDataset, target_names: Sequence[str], initial_epoch: int = 0,
                  num_shards: int = 1, shard_index: int = 0, split: int = 1):
    """The training batches; with `num_shards` > 1, one worker's share of them (`make_train_dataset`)."""
    train = config["train"]
    return make_train_dataset(
        dataset.train, config["model"]["input_size"], train["batch_size"], target_names, seed=train["seed"],
        flip=train["flip"], translate=train["translate"], random_erasing=train["random_erasing"],
        num_instances=train["num_instances"], epochs=train["epochs"], initial_epoch=initial_epoch,
        num_shards=num_shards, shard_index=shard_index, split=split,
    )


def steps_per_epoch(config: Mapping, dataset: ReIDDataset) -> int:
    """Global batches per epoch: every epoch has as many as the first (`epoch_plan`)."""
    train = config["train"]
    pids = dataset.train["pid"].to_numpy().astype("int32")
    plan = epoch_plan(pids, 1, train["batch_size"], train["num_instances"], train["seed"])
    return plan.shape[1] // int(train["batch_size"])


def run_definition(config: Mapping) -> dict[str, Any]:
    """The config fields that a resumed run must share with the run it continues (`section.field`: value): all that
    changes what is trained (data set, model, losses, batches, augmentation, optimizer, schedule), except
    `RESUMABLE_FIELDS`. `data.root`, evaluation, output and distribution may change."""
    fields = {"data.name": config["data"]["name"], "data.options": config["data"]["options"]}
    for section in ("model", "loss", "train", "optimizer", "schedule"):
        fields.update({f"{section}.{key}": value for key, value in config[section].items()
                       if f"{section}.{key}" not in RESUMABLE_FIELDS})
    return json.loads(json.dumps(fields, default=str))


def run_fingerprint(config: Mapping) -> str:
    """A SHA-256 of `run_definition`: checkpoints record it, so that a run recognises its own."""
    return hashlib.sha256(json.dumps(run_definition(config), sort_keys=True).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class RunState:
    """What a run starts from: the `backup` it resumes (None: epoch 0) and `best`, the `val_mAP` that `best.keras`
    holds (None: no best checkpoint yet); `best.keras` is replaced only by a better model."""

    backup: Backup | None
    best: float | None

    @property
    def initial_epoch(self) -> int:
        return self.backup.epoch if self.backup is not None else 0


def _advice(output_dir: pathlib.Path) -> str:
    return (f"rerun with --overwrite (training/fit.py; fit(..., overwrite=True)) to move {output_dir} aside and "
            f"start over, or choose another output.dir")


def _refuse_foreign(output_dir: pathlib.Path) -> None:
    """Raises `FileExistsError` if `output_dir` holds a run that this version cannot resume, which it would
    otherwise overwrite: outputs without a `backup/` folder, or a backup in Keras' `BackupAndRestore` format."""
    backup_dir = output_dir / BACKUP_DIR
    legacy = [name for name in ("training_metadata.json", "latest.weights.h5") if (backup_dir / name).exists()]
    if legacy and not committed_backups(backup_dir):
        raise FileExistsError(f"{backup_dir / legacy[0]} is a backup in the format of Keras' BackupAndRestore "
                              f"(an earlier hacnn_tf), which this version cannot resume: {_advice(output_dir)}")
    outputs = [name for name in RUN_OUTPUTS if (output_dir / name).exists()]
    if outputs and not backup_dir.is_dir():
        raise FileExistsError(f"output.dir {output_dir} holds a run ({', '.join(outputs)}) without the {BACKUP_DIR}/ "
                              f"folder that resuming needs (finished under an earlier version, or its backup was "
                              f"deleted); refusing to overwrite it: {_advice(output_dir)}")


def _unusable(error: BackupError, output_dir: pathlib.Path) -> BackupError:
    committed = committed_backups(output_dir / BACKUP_DIR)
    older = (f", or delete {committed[-1]} to resume from {committed[-2].name}"
             if len(committed) > 1 and error.path.is_relative_to(committed[-1]) else "")
    return BackupError(error.path, f"{error.reason}. The run cannot resume from this backup: {_advice(output_dir)}"
                                   f"{older}")


def _read_run(config: Mapping, output_dir: pathlib.Path) -> RunState:
    """The `RunState` of `output_dir`, read without writing anything."""
    try:
        backup = latest_backup(output_dir / BACKUP_DIR)
    except BackupError as error:
        raise _unusable(error, output_dir) from None
    if backup is not None and "config" in backup.state:
        before, now = run_definition(backup.state["config"]), run_definition(config)
        changed = [f"{name}: {before.get(name)!r} -> {now.get(name)!r}" for name in sorted({*before, *now})
                   if before.get(name) != now.get(name)]
        if changed:
            raise ValueError(f"output.dir {output_dir} holds a run of {backup.epoch} epochs trained with other "
                             f"settings, which resuming cannot change ({'; '.join(changed)}): rerun with the run's "
                             f"settings (its config.yaml) to resume it, or {_advice(output_dir)}")
    best = backup.state.get("best") if backup is not None else None
    info = checkpoint_info(output_dir / "best.keras")
    if info is not None and info.get("run") == run_fingerprint(config) and info.get("value") is not None:
        # best.keras is written before the backup that records its value: after a kill in between it is ahead.
        best = info["value"] if best is None else max(best, info["value"])
    return RunState(backup, best)


@contextlib.contextmanager
def open_run(config: Mapping, write: bool = True) -> Iterator[RunState]:
    """Opens the run in `output.dir` for training; yields its `RunState`.

    With `write` (the chief, or a single process), holds `backup/lock` for the `with` block (a second process
    training into the same folder fails at once), deletes what interrupted writes left (partial checkpoints,
    staging folders, superseded backups), and puts the files the backup copied (the CSV log) back as they were when
    it was committed. Raises `FileExistsError` for a run it cannot resume (`_refuse_foreign`), `BackupError` naming
    the file for a backup that does not read, and `ValueError` for a run trained with other settings.
    """
    output_dir = pathlib.Path(config["output"]["dir"])
    backup_dir = output_dir / BACKUP_DIR
    _refuse_foreign(output_dir)
    if not write:
        yield _read_run(config, output_dir)
        return
    backup_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(backup_dir / LOCK_FILE):
        removed = remove_partial_files(output_dir)
        run = _read_run(config, output_dir)
        removed += clean_backups(backup_dir, run.backup)
        if removed:
            logger.info("removed what interrupted writes left in %s: %s", output_dir,
                        ", ".join(str(path.relative_to(output_dir)) for path in removed))
        if run.backup is not None:
            for name in run.backup.state["files"]:
                saved, live = run.backup.directory / name, output_dir / name
                if name != MODEL_FILE and (not live.is_file() or live.read_bytes() != saved.read_bytes()):
                    with atomic_output(live, durable=True) as tmp:
                        shutil.copyfile(saved, tmp)
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


def logged_history(path: str | os.PathLike) -> keras.callbacks.History:
    """A `History` read back from a run's `training_log.csv`: `epoch` and `history` as `model.fit` returned them."""
    history = keras.callbacks.History()
    log = pd.read_csv(path)
    history.epoch = [int(epoch) for epoch in log["epoch"]]
    history.history = {name: log[name].tolist() for name in log.columns if name != "epoch"}
    return history


def build_callbacks(config: Mapping, dataset: ReIDDataset, output_dir: pathlib.Path, run: RunState | None = None,
                    backup_dir: pathlib.Path | None = None, chief: bool = True, strategy=None
                    ) -> list[keras.callbacks.Callback]:
    """NaN stop, learning-rate and re-id metrics in the logs, best (by mAP) and last checkpoints, CSV and TensorBoard
    logs, and last the backup for resuming; in that order, so that the later ones see what the earlier ones logged,
    and an epoch is backed up once all its outputs are written.

    Checkpoints and logs go to `output_dir`; the backup to `backup_dir` (default `output_dir/backup`), written by
    the `chief` only. `run` (from `open_run`) is what the run resumes from. With a multi-replica `strategy`, a
    `ReplicaConsistency` check (and, without synchronised batch norm, the averaging of the moving statistics) comes
    first.
    """
    eval_config, output = config["eval"], config["output"]
    epochs = config["train"]["epochs"]
    fingerprint = {"run": run_fingerprint(config)}
    best = AtomicModelCheckpoint(output_dir / "best.keras", monitor="val_mAP", info=fingerprint)
    if run is not None and run.best is not None:
        best.best = float(run.best)
    log_path = output_dir / "training_log.csv"
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(),
        LearningRateLogger(),
        ReIDEvaluation(dataset.query, dataset.gallery, every=eval_config["every"], epochs=epochs,
                       metric=eval_config["metric"], ranks=eval_config["ranks"], batch_size=eval_config["batch_size"]),
        best,
        AtomicModelCheckpoint(output_dir / "last.keras", info=fingerprint),
        keras.callbacks.CSVLogger(str(log_path), append=run is not None and run.initial_epoch > 0),
    ]
    if output["tensorboard"]:
        callbacks.append(keras.callbacks.TensorBoard(str(output_dir / "tensorboard"), write_graph=False))
    # Backups at epoch ends only: a resumed run replays whole epochs, whose batches depend on (seed, epoch).
    callbacks.append(EpochBackup(backup_dir or output_dir / BACKUP_DIR, best=best, files=[log_path],
                                 state={"config": json.loads(json.dumps(dict(config), default=str))}, write=chief))
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        sync = bool(config.get("distribute", {}).get("sync_batch_norm", True))
        # First, so that the backup, the evaluation and the checkpoints all see the averaged statistics.
        callbacks.insert(0, distribute.ReplicaConsistency(strategy, average_batch_norm=not sync))
    return callbacks


def fit(config: Mapping, dataset: ReIDDataset | None = None, verbose: int | str = "auto",
        extra_callbacks: Sequence[keras.callbacks.Callback] = (), overwrite: bool = False
        ) -> tuple[HACNN, keras.callbacks.History]:
    """Trains HA-CNN as `config` says; returns the model and the Keras history (with `val_mAP`, `val_rank1`...).

    Writes under `output.dir`: `config.yaml`, `best.keras` (best val_mAP), `last.keras`, `training_log.csv`,
    `tensorboard/` and `backup/` (the last finished epoch, see `hacnn_tf.callbacks`). Before the first step it checks
    the config (`validate_config`) and the data (`check_data`), and opens the run (`open_run`): a run that was
    interrupted resumes at the epoch after its last backup; a finished run is not trained again (a warning says so;
    the model of its backup and the history of its log are returned), unless `train.epochs` is larger than the
    epochs it trained: then it continues. A folder holding a run it cannot resume is refused. With `overwrite`, the
    run in `output.dir` is moved aside first (`start_over`) and training starts from scratch.

    Under the `distribute` strategy, the model, optimizer and `compile` live in `strategy.scope()` and
    `train.batch_size` is the global batch. In multi-worker training only the chief writes into `output.dir`; the
    other workers run the same callbacks (the same work, so no worker waits on another) but write their checkpoints
    and logs into a temporary directory, deleted at the end, and restore from the chief's `backup/`.
    """
    validate_config(config)
    strategy = distribute.initialize(config)  # before any other TF op: MultiWorkerMirroredStrategy needs that
    role = distribute.worker_role(strategy)
    keras.utils.set_random_seed(int(config["train"]["seed"]))
    if dataset is None:
        data = config["data"]
        if not data["root"]:
            raise ValueError("data.root is not set: give the folder that holds the data set")
        dataset = load_dataset(data["name"], data["root"], **data["options"])
    check_data(config, dataset)
    output_dir = pathlib.Path(config["output"]["dir"])
    if overwrite:
        if role.is_chief:
            start_over(output_dir)
        # A collective op: the other workers read output.dir only once the chief has moved the old run away.
        distribute.check_same_on_all_workers(strategy, "overwrite", 1)
    with open_run(config, write=role.is_chief) as run:
        # All workers must resume at the same epoch: they read the chief's backup, on storage they share.
        distribute.check_same_on_all_workers(strategy, "the epoch to resume at", run.initial_epoch)
        epochs = int(config["train"]["epochs"])
        if run.initial_epoch >= epochs:
            logger.warning("%s holds a finished run of %d epochs (train.epochs: %d): nothing to train. Raise "
                           "train.epochs to continue it, or %s", output_dir, run.initial_epoch, epochs,
                           _advice(output_dir))
            return (keras.saving.load_model(run.backup.model_path),
                    logged_history(run.backup.directory / "training_log.csv"))
        if run.backup is not None:
            logger.info("resuming %s at epoch %d from %s", output_dir, run.initial_epoch + 1, run.backup.directory)
        if role.is_chief:
            write_dir = output_dir
            with atomic_output(output_dir / "config.yaml", durable=True) as tmp:
                tmp.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
        else:
            write_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"hacnn_tf-{role.task_type}{role.task_id}-"))
        try:
            return _fit(config, dataset, strategy, role, run, output_dir, write_dir, verbose, extra_callbacks)
        finally:
            if write_dir != output_dir:
                shutil.rmtree(write_dir, ignore_errors=True)


def _fit(config, dataset, strategy, role, run, output_dir, write_dir, verbose, extra_callbacks):
    train = config["train"]
    epochs, batch_size = int(train["epochs"]), int(train["batch_size"])
    distribute.check_batch_split(strategy, batch_size, train["num_instances"])
    with strategy.scope():
        model = build_model(config, dataset.num_train_pids)
        synchronized = distribute.configure_batch_norm(
            model, strategy, bool(config.get("distribute", {}).get("sync_batch_norm", True)))
        if synchronized:
            logger.info("batch norm synchronised over %d replicas in %d layers", strategy.num_replicas_in_sync,
                        synchronized)
        losses, loss_weights = configured_losses(config, model.learn_region)
        steps = steps_per_epoch(config, dataset)
        model.compile(optimizer=build_optimizer(config, steps, epochs), loss=losses, loss_weights=loss_weights,
                      jit_compile=bool(train["jit_compile"]))
        if run.backup is not None:
            try:
                restore_backup(model, run.backup)
            except BackupError as error:
                raise _unusable(error, output_dir) from error
    data = distribute.distribute_dataset(
        strategy, lambda shards, index, split: train_dataset(config, dataset, list(losses), run.initial_epoch,
                                                             shards, index, split))
    callbacks = build_callbacks(config, dataset, write_dir, run, backup_dir=output_dir / BACKUP_DIR,
                                chief=role.is_chief, strategy=strategy)
    history = model.fit(data, epochs=epochs, initial_epoch=run.initial_epoch, steps_per_epoch=steps, shuffle=False,
                        callbacks=[*callbacks, *extra_callbacks], verbose=verbose)
    logger.info("training finished after %d epochs", len(history.epoch))
    return model, history
