"""Configuration-driven training with `model.fit`: the library behind `training/fit.py` and `make demo`."""

from __future__ import annotations

import copy
import json
import logging
import os
import pathlib
import shutil
import tempfile
from typing import Any, Mapping, Sequence

import keras
import pandas as pd
import tensorflow as tf
import yaml

from hacnn_tf import distribute
from hacnn_tf.callbacks import AtomicModelCheckpoint, ChiefBackupAndRestore, LearningRateLogger
from hacnn_tf.data.datasets import ReIDDataset, load_dataset
from hacnn_tf.data.pipeline import epoch_plan, make_train_dataset
from hacnn_tf.evaluation.callback import ReIDEvaluation
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
        loaded = json.load(handle) if path.suffix == ".json" else yaml.safe_load(handle)
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
    """The default configuration, updated by a YAML/JSON file and `section.field=value` overrides (YAML values).

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
        cursor[leaf] = yaml.safe_load(raw)
        _merge(config, nested)
    distribute.validate_config(config["distribute"])
    return config


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


def backup_epoch(backup_dir: pathlib.Path) -> int:
    """The epoch a run backed up by `keras.callbacks.BackupAndRestore` in `backup_dir` resumes at (0 if none)."""
    metadata = backup_dir / "training_metadata.json"
    if not metadata.is_file():
        return 0
    return int(json.loads(metadata.read_text(encoding="utf-8"))["epoch"])


def build_callbacks(config: Mapping, dataset: ReIDDataset, output_dir: pathlib.Path, resuming: bool = False,
                    backup_dir: pathlib.Path | None = None, chief: bool = True, strategy=None
                    ) -> list[keras.callbacks.Callback]:
    """Backup for resuming, NaN stop, learning-rate and re-id metrics in the logs, best (by mAP) and last
    checkpoints, CSV and TensorBoard logs; in that order, so the later ones see what the earlier ones logged.

    Checkpoints and logs go to `output_dir`; the backup to `backup_dir` (default `output_dir/backup`), restored by
    every process but written by the `chief` only. With a multi-replica `strategy`, a `ReplicaConsistency` check
    (and, without synchronised batch norm, the averaging of the moving statistics) comes first.
    """
    eval_config, output = config["eval"], config["output"]
    epochs = config["train"]["epochs"]
    best = AtomicModelCheckpoint(output_dir / "best.keras", monitor="val_mAP")
    log_path = output_dir / "training_log.csv"
    if resuming and log_path.is_file():
        # A resumed run keeps best.keras unless it beats the mAP reached before the interruption.
        logged = pd.read_csv(log_path)
        if "val_mAP" in logged and logged["val_mAP"].notna().any():
            best.best = float(logged["val_mAP"].max())
    callbacks: list[keras.callbacks.Callback] = [
        # Backups at epoch ends only: a resumed run replays whole epochs, whose batches depend on (seed, epoch).
        ChiefBackupAndRestore(backup_dir or output_dir / "backup", write=chief, save_freq="epoch"),
        keras.callbacks.TerminateOnNaN(),
        LearningRateLogger(),
        ReIDEvaluation(dataset.query, dataset.gallery, every=eval_config["every"], epochs=epochs,
                       metric=eval_config["metric"], ranks=eval_config["ranks"], batch_size=eval_config["batch_size"]),
        best,
        AtomicModelCheckpoint(output_dir / "last.keras"),
        keras.callbacks.CSVLogger(str(log_path), append=resuming),
    ]
    if output["tensorboard"]:
        callbacks.append(keras.callbacks.TensorBoard(str(output_dir / "tensorboard"), write_graph=False))
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        sync = bool(config.get("distribute", {}).get("sync_batch_norm", True))
        # First, so that the backup, the evaluation and the checkpoints all see the averaged statistics.
        callbacks.insert(0, distribute.ReplicaConsistency(strategy, average_batch_norm=not sync))
    return callbacks


def fit(config: Mapping, dataset: ReIDDataset | None = None, verbose: int | str = "auto",
        extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> tuple[HACNN, keras.callbacks.History]:
    """Trains HA-CNN as `config` says; returns the model and the Keras history (with `val_mAP`, `val_rank1`...).

    Writes under `output.dir`: `config.yaml`, `best.keras` (best val_mAP), `last.keras`, `training_log.csv`,
    `tensorboard/` and `backup/` (restarted runs resume from it).

    Under the `distribute` strategy, the model, optimizer and `compile` live in `strategy.scope()` and
    `train.batch_size` is the global batch. In multi-worker training only the chief writes into `output.dir`; the
    other workers run the same callbacks (the same work, so no worker waits on another) but write their checkpoints
    and logs into a temporary directory, deleted at the end, and restore from the chief's `backup/`.
    """
    strategy = distribute.initialize(config)  # before any other TF op: MultiWorkerMirroredStrategy needs that
    role = distribute.worker_role(strategy)
    keras.utils.set_random_seed(int(config["train"]["seed"]))
    if dataset is None:
        data = config["data"]
        if not data["root"]:
            raise ValueError("data.root is not set: give the folder that holds the data set")
        dataset = load_dataset(data["name"], data["root"], **data["options"])
    output_dir = pathlib.Path(config["output"]["dir"])
    if role.is_chief:
        write_dir = output_dir
        output_dir.mkdir(parents=True, exist_ok=True)
    else:
        write_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"hacnn_tf-{role.task_type}{role.task_id}-"))
    try:
        (write_dir / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
        return _fit(config, dataset, strategy, role, output_dir, write_dir, verbose, extra_callbacks)
    finally:
        if write_dir != output_dir:
            shutil.rmtree(write_dir, ignore_errors=True)


def _fit(config, dataset, strategy, role, output_dir, write_dir, verbose, extra_callbacks):
    train = config["train"]
    epochs, batch_size = int(train["epochs"]), int(train["batch_size"])
    backup_dir = output_dir / "backup"
    initial_epoch = backup_epoch(backup_dir)
    # All workers must resume at the same epoch: they read the chief's backup, on storage they share.
    distribute.check_same_on_all_workers(strategy, "the epoch to resume at", initial_epoch)
    if initial_epoch:
        logger.info("resuming from the backup in %s at epoch %d", backup_dir, initial_epoch + 1)
    if initial_epoch >= epochs:
        raise ValueError(f"The backup in {backup_dir} is at epoch {initial_epoch}, the configured "
                         f"train.epochs is {epochs}: nothing left to train")
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
        if tf.distribute.has_strategy():
            distribute.build_compiled_model(model, config["model"]["input_size"], list(losses))
    data = distribute.distribute_dataset(
        strategy, lambda shards, index, split: train_dataset(config, dataset, list(losses), initial_epoch,
                                                             shards, index, split))
    callbacks = build_callbacks(config, dataset, write_dir, initial_epoch > 0, backup_dir=backup_dir,
                                chief=role.is_chief, strategy=strategy)
    history = model.fit(data, epochs=epochs, steps_per_epoch=steps, shuffle=False,
                        callbacks=[*callbacks, *extra_callbacks], verbose=verbose)
    logger.info("training finished after %d epochs", len(history.epoch))
    return model, history
