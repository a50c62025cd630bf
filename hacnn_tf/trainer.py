"""Training HA-CNN with `model.fit` from a typed `Config`: the library behind `hacnn-tf fit` and `make demo`.

`fit` is the orchestration: it checks the config and the data before the first step, opens the run folder
(`hacnn_tf.run_folder`: resumes a run from the last epoch its backup committed, refuses one of other settings or
other data, does nothing for a finished run), builds and compiles the model under the `distribute` strategy, and
trains. The pieces (`build_optimizer`, `build_model`, `configured_losses`, `train_dataset`, `build_callbacks`) are
public, for jobs and tests that assemble a run themselves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import pathlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence

import keras

from hacnn_tf import distribute
from hacnn_tf.callbacks import (
    AtomicModelCheckpoint,
    BackupError,
    EpochBackup,
    LearningRateLogger,
    ReIDEvaluation,
    TrainingLog,
    restore_backup,
)
from hacnn_tf.config import Config, load_config
from hacnn_tf.data.datasets import ReIDDataset, load_dataset
from hacnn_tf.data.pipeline import epoch_plan, make_train_dataset
from hacnn_tf.errors import ConfigError, DataError, MissingExtraError
from hacnn_tf.losses import hacnn_losses
from hacnn_tf.model import HACNN
from hacnn_tf.run_folder import (
    BACKUP_DIR,
    LOG_FILE,
    RunState,
    advice,
    backup_state,
    data_fingerprint,
    logged_history,
    open_run,
    run_fingerprint,
    start_over,
    unusable,
    write_config,
)

__all__ = [
    "Config",
    "build_callbacks",
    "build_model",
    "build_optimizer",
    "check_data",
    "configured_losses",
    "fit",
    "load_config",
    "steps_per_epoch",
    "train_dataset",
]

logger = logging.getLogger(__name__)


def check_data(config: Config, dataset: ReIDDataset) -> None:
    """Raises `ConfigError` (naming the fields) or `DataError` if training or its evaluation would fail on this data
    set: fewer training images than a batch, fewer training identities than a P x K batch, ranks deeper than the
    gallery, or no query whose identity the gallery holds under another camera (Rank-k and mAP would be undefined)."""
    train, ranks = config.train, list(config.eval.ranks)
    images, identities = len(dataset.train), dataset.train["pid"].nunique()
    if images < train.batch_size:
        raise ConfigError(f"train.batch_size must not exceed the {images} training images; got {train.batch_size}")
    if train.num_instances and identities < train.batch_size // train.num_instances:
        raise ConfigError(
            f"train.batch_size / train.num_instances = {train.batch_size // train.num_instances} "
            f"identities per P x K batch, but the training set has {identities}"
        )
    if len(dataset.query) == 0 or len(dataset.gallery) == 0:
        raise DataError(
            f"the evaluation needs query and gallery images; the data set has {len(dataset.query)} "
            f"queries and {len(dataset.gallery)} gallery images"
        )
    if max(ranks) > len(dataset.gallery):
        raise ConfigError(f"eval.ranks must not exceed the {len(dataset.gallery)} gallery images; got {ranks}")
    pairs = dataset.query[["pid", "camid"]].merge(dataset.gallery[["pid", "camid"]], on="pid")
    if not (pairs["camid_x"] != pairs["camid_y"]).any():
        raise DataError(
            f"no query identity is in the gallery under another camera ({len(dataset.query)} queries, "
            f"{len(dataset.gallery)} gallery images): Rank-k and mAP are undefined, the evaluation "
            f"would fail after the first evaluated epoch"
        )


def build_optimizer(config: Config, steps_per_epoch: int, epochs: int) -> keras.optimizers.Optimizer:
    """Adam or SGD with a multistep learning-rate schedule (milestones < 1 are fractions of the epochs)."""
    opt, schedule = config.optimizer, config.schedule
    base = float(opt.learning_rate)
    # The rate of update `i` is read at `iterations == i`; decay starts with the first update of the milestone epoch.
    boundaries = [int(round(m * epochs if m < 1 else m)) * steps_per_epoch - 1 for m in schedule.milestones]
    if boundaries:
        values = [base * float(schedule.gamma) ** i for i in range(len(boundaries) + 1)]
        learning_rate = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    else:
        learning_rate = base
    decay = float(opt.weight_decay) or None
    if opt.name.lower() == "adam":
        return keras.optimizers.Adam(learning_rate, beta_1=opt.beta_1, beta_2=opt.beta_2, weight_decay=decay)
    return keras.optimizers.SGD(learning_rate, momentum=opt.momentum, nesterov=opt.nesterov, weight_decay=decay)


def build_model(config: Config, num_classes: int | None) -> HACNN:
    """The `model` section's HA-CNN, with classifiers of `num_classes` identities when the softmax loss is on."""
    return HACNN(num_classes if config.loss.softmax else None, **dataclasses.asdict(config.model))


def configured_losses(config: Config, learn_region: bool) -> tuple[dict, dict]:
    """The `(loss, loss_weights)` dictionaries the `loss` section asks for (keys: the outputs that take labels)."""
    loss = config.loss
    return hacnn_losses(
        softmax=loss.softmax,
        triplet=loss.triplet,
        weight_x=loss.weight_x,
        weight_t=loss.weight_t,
        label_smoothing=loss.label_smoothing,
        margin=loss.margin,
        learn_region=learn_region,
    )


def train_dataset(
    config: Config,
    dataset: ReIDDataset,
    target_names: Sequence[str],
    initial_epoch: int = 0,
    num_shards: int = 1,
    shard_index: int = 0,
    split: int = 1,
):
    """The training batches; with `num_shards` > 1, one worker's share of them (`make_train_dataset`)."""
    train = config.train
    return make_train_dataset(
        dataset.train,
        list(config.model.input_size),
        train.batch_size,
        target_names,
        seed=train.seed,
        flip=train.flip,
        translate=train.translate,
        random_erasing=train.random_erasing,
        num_instances=train.num_instances,
        epochs=train.epochs,
        initial_epoch=initial_epoch,
        num_shards=num_shards,
        shard_index=shard_index,
        split=split,
    )


def steps_per_epoch(config: Config, dataset: ReIDDataset) -> int:
    """Global batches per epoch: every epoch has as many as the first (`epoch_plan`)."""
    train = config.train
    pids = dataset.train["pid"].to_numpy().astype("int32")
    plan = epoch_plan(pids, 1, train.batch_size, train.num_instances, train.seed)
    return plan.shape[1] // int(train.batch_size)


def build_callbacks(
    config: Config,
    dataset: ReIDDataset,
    output_dir: pathlib.Path,
    run: RunState | None = None,
    backup_dir: pathlib.Path | None = None,
    chief: bool = True,
    strategy=None,
) -> list[keras.callbacks.Callback]:
    """NaN stop, learning-rate and re-id metrics in the logs, best (by mAP) and last checkpoints, CSV and TensorBoard
    logs, and last the backup for resuming; in that order, so that the later ones see what the earlier ones logged,
    and an epoch is backed up once all its outputs are written.

    Checkpoints and logs go to `output_dir`; the backup to `backup_dir` (default `output_dir/backup`), written by
    the `chief` only, records the config and `run.data`. `run` (from `open_run`) is what the run resumes from. With
    a multi-replica `strategy`, a `ReplicaConsistency` check (and, without synchronised batch norm, the averaging of
    the moving statistics) comes first.
    """
    data = run.data if run is not None else None
    fingerprint = {"run": run_fingerprint(config, data)}
    best = AtomicModelCheckpoint(output_dir / "best.keras", monitor="val_mAP", info=fingerprint)
    if run is not None and run.best is not None:
        best.best = float(run.best)
    log_path = output_dir / LOG_FILE
    evaluation = config.eval
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(),
        LearningRateLogger(),
        ReIDEvaluation(
            dataset.query,
            dataset.gallery,
            every=evaluation.every,
            epochs=config.train.epochs,
            metric=evaluation.metric,
            ranks=list(evaluation.ranks),
            batch_size=evaluation.batch_size,
        ),
        best,
        AtomicModelCheckpoint(output_dir / "last.keras", info=fingerprint),
        TrainingLog(log_path, append=run is not None and run.initial_epoch > 0),
    ]
    if config.output.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(output_dir / "tensorboard"), write_graph=False))
    # Backups at epoch ends only: a resumed run replays whole epochs, whose batches depend on (seed, epoch).
    callbacks.append(
        EpochBackup(
            backup_dir or output_dir / BACKUP_DIR,
            best=best,
            files=[log_path],
            state=backup_state(config, data),
            write=chief,
        )
    )
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        # First, so that the backup, the evaluation and the checkpoints all see the averaged statistics.
        callbacks.insert(
            0, distribute.ReplicaConsistency(strategy, average_batch_norm=not config.distribute.sync_batch_norm)
        )
    return callbacks


def _training_data(config: Config, dataset: ReIDDataset | None) -> ReIDDataset:
    """`dataset`, or the one `config.data` names; checked against the config (`check_data`)."""
    if dataset is None:
        if not config.data.root:
            raise ConfigError(
                "data.root is not set: give the folder that holds the data set, e.g. --set data.root=/data/reid"
            )
        dataset = load_dataset(config.data.name, config.data.root, **config.data.options)
    check_data(config, dataset)
    return dataset


def _check_tensorboard(config: Config) -> None:
    """With `output.tensorboard`, the `tensorboard` package (a dependency) must be installed: found before the first
    step instead of at the end of the first epoch."""
    if config.output.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise MissingExtraError(
            "output.tensorboard is true but the tensorboard package is not installed: "
            "pip install tensorboard (the release of your TensorFlow), or set "
            "output.tensorboard=false"
        )


@contextlib.contextmanager
def _write_folder(role: distribute.WorkerRole, output_dir: pathlib.Path) -> Iterator[pathlib.Path]:
    """Where this process writes its checkpoints and logs: `output_dir` for the chief (with `config.yaml`), a
    temporary folder for the other workers, deleted at the end."""
    if role.is_chief:
        yield output_dir
        return
    folder = pathlib.Path(tempfile.mkdtemp(prefix=f"hacnn_tf-{role.task_type}{role.task_id}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fit(
    config: Config | Mapping,
    dataset: ReIDDataset | None = None,
    verbose: int | str = "auto",
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    overwrite: bool = False,
) -> tuple[HACNN, keras.callbacks.History]:
    """Trains HA-CNN as `config` says; returns the model and the Keras history (with `val_mAP`, `val_rank1`...).

    Writes under `output.dir` (`hacnn_tf.run_folder`): `config.yaml`, `best.keras` (best val_mAP), `last.keras`,
    `training_log.csv`, `tensorboard/` and `backup/`. Before the first step it checks the config (`Config.validate`;
    a mapping is read with `Config.from_dict`) and the data (`check_data`), and opens the run (`open_run`): a run
    that was interrupted resumes at the epoch after its last backup, if it trained with the same settings on the
    same data; a finished run is not trained again (a warning says so; the model of its backup and the history of
    its log are returned), unless `train.epochs` is larger than the epochs it trained: then it continues. A folder
    holding a run it cannot resume is refused. With `overwrite`, the run in `output.dir` is moved aside first
    (`start_over`) and training starts from scratch.

    Under the `distribute` strategy, the model, optimizer and `compile` live in `strategy.scope()` and
    `train.batch_size` is the global batch. In multi-worker training only the chief writes into `output.dir`; the
    other workers run the same callbacks (the same work, so no worker waits on another) but write their checkpoints
    and logs into a temporary directory, deleted at the end, and restore from the chief's `backup/`.
    """
    config = (config if isinstance(config, Config) else Config.from_dict(config)).validate()
    _check_tensorboard(config)
    strategy = distribute.initialize(config)  # before any other TF op: MultiWorkerMirroredStrategy needs that
    role = distribute.worker_role(strategy)
    keras.utils.set_random_seed(int(config.train.seed))
    dataset = _training_data(config, dataset)
    data = data_fingerprint(dataset, config.data.root)
    output_dir = pathlib.Path(config.output.dir)
    if overwrite:
        if role.is_chief:
            start_over(output_dir)
        # A collective op: the other workers read output.dir only once the chief has moved the old run away.
        distribute.check_same_on_all_workers(strategy, "overwrite", 1)
    with open_run(config, data, write=role.is_chief) as run:
        # All workers must resume at the same epoch: they read the chief's backup, on storage they share.
        distribute.check_same_on_all_workers(strategy, "the epoch to resume at", run.initial_epoch)
        if run.initial_epoch >= config.train.epochs:
            logger.warning(
                "%s holds a finished run of %d epochs (train.epochs: %d): nothing to train. Raise "
                "train.epochs to continue it, or %s",
                output_dir,
                run.initial_epoch,
                config.train.epochs,
                advice(output_dir),
            )
            return keras.saving.load_model(run.backup.model_path), logged_history(run.backup.directory / LOG_FILE)
        if run.backup is not None:
            logger.info("resuming %s at epoch %d from %s", output_dir, run.initial_epoch + 1, run.backup.directory)
        if role.is_chief:
            write_config(config, output_dir)
        with _write_folder(role, output_dir) as write_dir:
            return _fit(config, dataset, strategy, role, run, output_dir, write_dir, verbose, extra_callbacks)


def _compiled_model(
    config: Config, dataset: ReIDDataset, strategy, run: RunState, output_dir: pathlib.Path, steps: int
) -> tuple[HACNN, list[str]]:
    """The model, compiled with the configured losses and optimizer inside `strategy.scope()`, with the state of
    the backup `run` resumes; and the names of the outputs that take labels."""
    with strategy.scope():
        model = build_model(config, dataset.num_train_pids)
        synchronized = distribute.configure_batch_norm(model, strategy, config.distribute.sync_batch_norm)
        if synchronized:
            logger.info(
                "batch norm synchronised over %d replicas in %d layers", strategy.num_replicas_in_sync, synchronized
            )
        losses, loss_weights = configured_losses(config, model.learn_region)
        model.compile(
            optimizer=build_optimizer(config, steps, config.train.epochs),
            loss=losses,
            loss_weights=loss_weights,
            jit_compile=bool(config.train.jit_compile),
        )
        if run.backup is not None:
            try:
                restore_backup(model, run.backup)
            except BackupError as error:
                raise unusable(error, output_dir) from error
    return model, list(losses)


def _fit(
    config: Config,
    dataset: ReIDDataset,
    strategy,
    role: distribute.WorkerRole,
    run: RunState,
    output_dir: pathlib.Path,
    write_dir: pathlib.Path,
    verbose: int | str,
    extra_callbacks: Sequence[keras.callbacks.Callback],
) -> tuple[HACNN, keras.callbacks.History]:
    """The training itself, once the run is open: model, input pipeline, callbacks, `model.fit`."""
    distribute.check_batch_split(strategy, config.train.batch_size, config.train.num_instances)
    steps = steps_per_epoch(config, dataset)
    model, targets = _compiled_model(config, dataset, strategy, run, output_dir, steps)
    data = distribute.distribute_dataset(
        strategy,
        lambda shards, index, split: train_dataset(config, dataset, targets, run.initial_epoch, shards, index, split),
    )
    callbacks = build_callbacks(
        config, dataset, write_dir, run, backup_dir=output_dir / BACKUP_DIR, chief=role.is_chief, strategy=strategy
    )
    history = model.fit(
        data,
        epochs=config.train.epochs,
        initial_epoch=run.initial_epoch,
        steps_per_epoch=steps,
        shuffle=False,
        callbacks=[*callbacks, *extra_callbacks],
        verbose=verbose,
    )
    logger.info("training finished after %d epochs", len(history.epoch))
    return model, history
