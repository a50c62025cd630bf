"""Losses of HA-CNN training as torchreid's engine defines them (docs/parity.md#training-differences):
label-smoothed cross-entropy and batch-hard triplet, each applied to the global and the local head and averaged
(torchreid's `DeepSupervision`)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hacnn_tf")
class LabelSmoothingCrossEntropy(keras.losses.Loss):
    """Cross-entropy on integer labels against `(1 - epsilon) * one_hot + epsilon / K` (Szegedy et al. 2016).

    `y_true`: `(N,)` integer identity labels; `y_pred`: `(N, K)` logits. Returns the per-sample loss (torchreid's
    `CrossEntropyLoss(label_smooth=True)`, epsilon 0.1).
    """

    def __init__(self, epsilon: float = 0.1, name: str = "label_smoothing_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        num_classes = ops.shape(log_probs)[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        targets = ops.one_hot(labels, num_classes) * (1.0 - self.epsilon) + self.epsilon / ops.cast(
            num_classes, "float32"
        )
        return -ops.sum(targets * log_probs, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config


def pairwise_euclidean_distance(features):
    """`(N, N)` Euclidean distances; squared distances are clamped at 1e-12 before the root, as in torchreid."""
    squared = ops.sum(ops.square(features), axis=-1)
    distance = squared[:, None] + squared[None, :] - 2.0 * ops.matmul(features, ops.transpose(features))
    return ops.sqrt(ops.maximum(distance, 1e-12))


@keras.saving.register_keras_serializable(package="hacnn_tf")
class BatchHardTripletLoss(keras.losses.Loss):
    """Batch-hard triplet loss (Hermans et al. 2017) on raw features, torchreid's `TripletLoss(margin=0.3)`.

    For each anchor: the farthest same-identity sample and the closest other-identity sample in the batch,
    `max(0, d(a, p) - d(a, n) + margin)` with Euclidean `d`. Needs batches with several images per identity (the
    P x K sampler of `hacnn_tf.data.pipeline`). `y_true`: `(N,)` labels; `y_pred`: `(N, D)` features.
    """

    def __init__(self, margin: float = 0.3, name: str = "batch_hard_triplet", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        distance = pairwise_euclidean_distance(ops.cast(y_pred, "float32"))
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        same = ops.equal(labels[:, None], labels[None, :])
        largest = ops.max(distance) + 1.0
        hardest_positive = ops.max(ops.where(same, distance, 0.0), axis=1)
        hardest_negative = ops.min(ops.where(same, largest, distance), axis=1)
        return ops.relu(hardest_positive - hardest_negative + self.margin)

    def get_config(self):
        config = super().get_config()
        config.update(margin=self.margin)
        return config


def hacnn_losses(
    softmax: bool = True,
    triplet: bool = False,
    weight_x: float = 1.0,
    weight_t: float = 1.0,
    label_smoothing: float = 0.1,
    margin: float = 0.3,
    learn_region: bool = True,
) -> tuple[dict, dict]:
    """`(loss, loss_weights)` dictionaries for `model.compile` keyed by the HACNN training outputs.

    Each criterion is averaged over the global and the local head (weight 1/2 each, torchreid's `DeepSupervision`),
    then scaled by `weight_x` (cross-entropy) or `weight_t` (triplet), as torchreid's triplet engine combines them.
    """
    heads = ("global", "local") if learn_region else ("global",)
    losses, weights = {}, {}
    if softmax:
        for head in heads:
            losses[f"{head}_logits"] = LabelSmoothingCrossEntropy(label_smoothing)
            weights[f"{head}_logits"] = weight_x / len(heads)
    if triplet:
        for head in heads:
            losses[f"{head}_features"] = BatchHardTripletLoss(margin)
            weights[f"{head}_features"] = weight_t / len(heads)
    if not losses:
        raise ValueError("hacnn_losses: no loss selected (softmax and triplet are both False)")
    return losses, weights
