"""The local branch's per-level Inception-B over the `T` region crops (HA-CNN §3.2)."""

from __future__ import annotations

import keras
from keras import ops

from hacnn_tf.layers.inception import InceptionB


@keras.saving.register_keras_serializable(package="hacnn_tf")
class LocalInception(keras.layers.Layer):
    """One Inception-B shared by the `T` regions of a level of the local stream (§3.2: the regions share weights).

    In training each region is its own call, so batch norm normalises each region over the batch and updates its
    running statistics once per region, as torchreid's `T` calls do. At inference the statistics are fixed and the
    regions go through as one `N * T` batch: the same result in one call instead of `T`.

    Args:
        filters: output channels of the Inception-B (the level's `nchannels`).

    Input `(N, T, h, w, C)` region crops; output `(N, T, ceil(h / 2), ceil(w / 2), filters)`.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.block = InceptionB(self.filters, nonnegative_inputs=True, dtype=self.dtype_policy, name=f"{self.name}_b")

    def build(self, input_shape):
        self.block.build((None, *input_shape[2:]))
        self.built = True

    def call(self, regions, training=None):
        _, regions_count, height, width, channels = regions.shape
        if training:
            return ops.stack([self.block(regions[:, r], training=True) for r in range(regions_count)], axis=1)
        merged = self.block(ops.reshape(regions, (-1, height, width, channels)), training=False)
        return ops.reshape(merged, (-1, regions_count, *merged.shape[1:]))

    def compute_output_shape(self, input_shape):
        block_shape = self.block.compute_output_shape((None, *input_shape[2:]))
        return (input_shape[0], input_shape[1], *block_shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters)
        return config
