"""Batch normalisation whose training step is TensorFlow's fused kernel: one op forward, one op backward."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hacnn_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training-mode call on NHWC maps runs `FusedBatchNormV3`.

    Keras 3 normalises with `ops.moments` and `ops.batch_normalization`, a chain of elementwise ops whose gradient is
    another chain; the fused kernel (oneDNN on CPU) is one op each way (docs/performance.md gives the training
    speed-up).
    Same variables and semantics as the Keras layer: the batch is normalised with its biased variance and the moving
    statistics are updated as Keras updates them (the fused op returns the unbiased variance, which is rescaled).
    Inference, frozen layers, synchronised (multi-replica) batch norm, masks, renorm, other ranks or axes, layers
    without `gamma`/`beta` and other backends take the Keras path.

    Input `(N, H, W, C)` (channels last); output the same shape.
    """

    def _fusable(self, inputs, training, mask) -> bool:
        return (
            bool(training)
            and self.trainable
            and not self.synchronized
            and not self.renorm
            and mask is None
            and self.scale
            and self.center
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and keras.backend.backend() == "tensorflow"
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = ops.cast(inputs, "float32")
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32"), epsilon=self.epsilon, is_training=True
        )
        count = ops.cast(ops.prod(ops.shape(x)[:3]), "float32")
        variance = variance * ((count - 1.0) / ops.maximum(count, 1.0))
        moving_mean = ops.cast(self.moving_mean, "float32")
        moving_variance = ops.cast(self.moving_variance, "float32")
        self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(outputs, self.compute_dtype)
