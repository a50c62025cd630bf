"""Training under a `tf.distribute` strategy chosen in the config's `distribute` section.

* `default`: one device, as without a strategy.
* `mirrored`: `tf.distribute.MirroredStrategy`, the GPUs (or `devices`) of one machine.
* `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`, several machines; each process reads the cluster and
  its own task from the `TF_CONFIG` environment variable. TensorFlow wants this strategy created before any other
  TF op runs, so `hacnn-tf fit` calls `initialize` first thing; `hacnn_tf.trainer.fit` reuses it.

`train.batch_size` is the global batch. `distribute_dataset` gives each worker its contiguous share of every global
batch and each local replica a contiguous part of that share, so the union over the replicas is the batch a single
process reads, with the same augmentations. The chief (task `chief`, or worker 0 when there is none) is the only
process that writes into `output.dir`; see `hacnn_tf.trainer.fit`.

Batch norm: with `sync_batch_norm` (the default) every BatchNormalization normalises with the statistics of the
global batch (`configure_batch_norm`), so training matches one process up to float rounding; without it each replica
uses its own sub-batch, and `ReplicaConsistency` averages the moving statistics over the replicas at epoch ends.

Keras 3.15 needs two workarounds here. Its TF trainer does not run `MultiWorkerMirroredStrategy` as shipped
(keras-team/keras#20585): it reduces a nested data batch and scalar metrics with `axis=0`, which the strategy's
`reduce` rejects, so `initialize` creates a subclass whose `reduce` maps over nested structures and reduces scalars
without an axis. (Under a strategy it builds the compiled loss from a symbolic inference call; HA-CNN returns the
same outputs in both modes, so that needs nothing here.) Its `BackupAndRestore` has no multi-worker mode (and is not
crash-safe): training backs up with `hacnn_tf.callbacks.EpochBackup`, the one backup of single-process and
distributed runs, written by the chief only and restored by every worker (`hacnn_tf.run_folder.open_run`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping

import keras
import tensorflow as tf

from hacnn_tf.config import Config, DistributeConfig

logger = logging.getLogger(__name__)

_created: tuple[tuple, tf.distribute.Strategy] | None = None


class KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` whose `reduce` accepts what Keras 3's TF trainer passes it: a nested structure
    (the first data batch, reduced to build the model symbolically) and scalars with `axis=0` (the per-replica
    metric results, averaged for the logs). Both are reduced leaf by leaf, scalars over the replicas only."""

    def reduce(self, reduce_op, value, axis):
        def reduce_one(leaf):
            shape = getattr(self.experimental_local_results(leaf)[0], "shape", None)
            scalar = shape is not None and shape.rank == 0
            return tf.distribute.MultiWorkerMirroredStrategy.reduce(self, reduce_op, leaf, None if scalar else axis)

        return tf.nest.map_structure(reduce_one, value)


def _key(section: DistributeConfig) -> tuple:
    return (
        section.strategy,
        tuple(section.devices) if section.devices else None,
        section.communication,
        section.timeout_seconds,
    )


def initialize(config: Config) -> tf.distribute.Strategy:
    """The strategy `config.distribute` asks for (checked by `DistributeConfig.validate`), created once per process
    (later calls return it).

    Call it before anything else runs TensorFlow ops when the strategy is `multi_worker`: the collective ops it
    configures can only be set up while the TF runtime is not yet initialised.
    """
    global _created
    section = config.distribute
    section.validate()
    key = _key(section)
    if _created is not None:
        if _created[0] != key:
            raise RuntimeError(
                f"This process already created the distribute strategy {_created[0]}; TensorFlow "
                f"cannot switch to {key} in the same process"
            )
        return _created[1]
    name = section.strategy
    if name == "default":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        cross_device_ops = {
            "auto": None,
            "nccl": tf.distribute.NcclAllReduce,
            "hierarchical_copy": tf.distribute.HierarchicalCopyAllReduce,
            "reduce_to_one": tf.distribute.ReductionToOneDevice,
        }[section.communication]
        strategy = tf.distribute.MirroredStrategy(
            list(section.devices) if section.devices else None, cross_device_ops=cross_device_ops and cross_device_ops()
        )
    else:
        if "TF_CONFIG" not in os.environ:
            logger.warning(
                "distribute.strategy is multi_worker but TF_CONFIG is not set: training on this machine alone"
            )
        implementation = {
            "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
            "ring": tf.distribute.experimental.CommunicationImplementation.RING,
            "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
        }[section.communication]
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=implementation, timeout_seconds=section.timeout_seconds
        )
        strategy = KerasMultiWorkerMirroredStrategy(communication_options=options)
    _created = (key, strategy)
    role = worker_role(strategy)
    logger.info(
        "distribute strategy %s: %d replicas, %d workers, this process is %s%s",
        name,
        strategy.num_replicas_in_sync,
        role.num_workers,
        role.name,
        " (chief)" if role.is_chief else "",
    )
    return strategy


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process in the cluster: `task_type` (None outside a cluster), `task_id`, number of training workers."""

    task_type: str | None
    task_id: int
    num_workers: int
    is_chief: bool

    @property
    def name(self) -> str:
        return "the only worker" if self.task_type is None else f"{self.task_type} {self.task_id}"


def worker_role(strategy: tf.distribute.Strategy) -> WorkerRole:
    """Who this process is. The chief is the task of type `chief`, or worker 0 when the cluster has no chief; a
    process outside a cluster (default and mirrored strategies, or no `TF_CONFIG`) is its own chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if (
        not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        or resolver is None
        or not resolver.task_type
    ):
        return WorkerRole(None, 0, 1, True)
    spec = resolver.cluster_spec().as_dict()
    num_workers = len(spec.get("chief", [])) + len(spec.get("worker", []))
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    if task_type not in ("chief", "worker"):
        raise ValueError(f"TF_CONFIG task type {task_type!r}: only 'chief' and 'worker' tasks train")
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in spec)
    return WorkerRole(task_type, task_id, max(num_workers, 1), is_chief)


def distribute_dataset(strategy: tf.distribute.Strategy, make: Callable[[int, int, int], tf.data.Dataset]):
    """The training input under `strategy`: `make(num_shards, shard_index, split)` builds one worker's dataset
    (`hacnn_tf.data.pipeline.make_train_dataset` with those arguments).

    Every worker reads its contiguous share of each global batch, cut into one batch per local replica, through
    `distribute_datasets_from_function`. Automatic sharding is switched off explicitly (`AutoShardPolicy.OFF`): the
    data set is built from tensors, so TF's AUTO policy would fall back to DATA sharding, which decodes every image
    of the global batch on every worker and throws the other workers' parts away.
    """
    if strategy.num_replicas_in_sync == 1 and not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return make(1, 0, 1)

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local_replicas = context.num_replicas_in_sync // context.num_input_pipelines
        dataset = make(context.num_input_pipelines, context.input_pipeline_id, local_replicas)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset.with_options(options)

    return strategy.distribute_datasets_from_function(dataset_fn)


def check_batch_split(strategy: tf.distribute.Strategy, batch_size: int, num_instances: int | None) -> None:
    """Raises `ValueError` unless every replica gets the same number of images and, with P x K batches, whole
    identities (a multiple of K), so that each replica's batch-hard triplet loss sees all K images of its ids."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"train.batch_size ({batch_size}) must be a multiple of the {replicas} replicas of "
            f"distribute.strategy: it is the global batch, divided evenly among them"
        )
    if num_instances and (batch_size // replicas) % num_instances:
        raise ValueError(
            f"train.batch_size ({batch_size}) must be a multiple of train.num_instances "
            f"({num_instances}) x the {replicas} replicas, so that each replica's part of a P x K batch "
            f"holds whole identities (K images each)"
        )


def configure_batch_norm(model: keras.Model, strategy: tf.distribute.Strategy, synchronized: bool) -> int:
    """With several replicas and `synchronized`, makes every `BatchNormalization` of `model` normalise with the
    statistics of the global batch (Keras' `synchronized=True`: all-reduced sums, their gradients all-reduced too),
    so that training matches a single process. Returns the number of layers switched."""
    if strategy.num_replicas_in_sync == 1 or not synchronized:
        return 0
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not layers:
        raise ValueError(
            "distribute.sync_batch_norm is true but the model has no keras BatchNormalization layer to synchronise"
        )
    for layer in layers:
        layer.synchronized = True  # read at call time by BatchNormalization._moments
    return len(layers)


def check_same_on_all_workers(strategy: tf.distribute.Strategy, name: str, value: int) -> None:
    """Raises `RuntimeError` on every worker unless all workers pass the same `value` (a collective op: call it
    on all of them)."""
    if worker_role(strategy).num_workers == 1:
        return
    values = strategy.experimental_distribute_values_from_function(lambda context: tf.constant([value], tf.int64))
    gathered = sorted(set(strategy.gather(values, axis=0).numpy().tolist()))
    if len(gathered) > 1:
        raise RuntimeError(
            f"The workers disagree on {name}: {gathered}. Every worker must read the chief's backup: "
            f"output.dir must be on storage that all workers share"
        )


class ReplicaConsistency(keras.callbacks.Callback):
    """Keeps the replicas' copies of the model identical, for multi-replica training.

    At the start, checks that no model or optimizer variable is `ON_READ`: reading such a variable is a collective
    op, which would hang when only the chief saves a checkpoint. With `average_batch_norm` (batch norm not
    synchronised), averages the BatchNormalization moving statistics over the replicas at every epoch end: Keras 3
    creates them with aggregation "none", so each replica otherwise keeps the statistics of its own sub-batches and
    the workers' checkpoints and evaluations would differ. Place it before the backup, evaluation and checkpoint
    callbacks.
    """

    def __init__(self, strategy: tf.distribute.Strategy, average_batch_norm: bool):
        super().__init__()
        self.strategy, self.average_batch_norm = strategy, average_batch_norm
        self._average = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        variables = list(self.model.weights) + list(self.model.optimizer.variables)
        on_read = [
            v.path
            for v in variables
            if getattr(getattr(v, "value", v), "synchronization", None) == tf.VariableSynchronization.ON_READ
        ]
        if on_read:
            raise RuntimeError(
                f"Variables synchronised on read would make chief-only checkpoints a collective op: {on_read[:5]}"
            )
        if not self.average_batch_norm:
            return
        moving = [
            v
            for layer in self.model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)
            for v in (layer.moving_mean, layer.moving_variance)
        ]
        if not moving:
            return

        def replica_fn():
            context = tf.distribute.get_replica_context()
            means = context.all_reduce(tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in moving])
            for variable, mean in zip(moving, means):
                variable.value.assign(mean)  # aggregation "none": each replica sets its own copy, to the same mean

        self._average = tf.function(lambda: self.strategy.run(replica_fn))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._average is not None:
            self._average()


def tf_config_for(cluster: Mapping[str, list[str]], task_type: str, task_id: int) -> str:
    """The `TF_CONFIG` value of one task: `tf_config_for({"worker": ["host1:2222", "host2:2222"]}, "worker", 1)`."""
    return json.dumps(
        {"cluster": {k: list(v) for k, v in cluster.items()}, "task": {"type": task_type, "index": int(task_id)}}
    )
