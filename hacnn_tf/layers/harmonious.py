"""Harmonious attention (HA-CNN §3.1): the soft attention map and the hard region translations of one level."""

from __future__ import annotations

import keras

from hacnn_tf.layers.attention import SoftAttention
from hacnn_tf.layers.regional import HardRegionalAttention


@keras.saving.register_keras_serializable(package="hacnn_tf")
class HarmoniousAttention(keras.layers.Layer):
    """Soft (pixel) and hard (regional) attention learned jointly on one level's features.

    Args:
        num_regions: the number of hard-attention regions `T`.
        reduction: channel reduction of the channel attention.

    Input `(N, H, W, C)`; outputs `(soft_map (N, H, W, C), translations (N, T, 2))`. The level's global output is
    `features * soft_map`; the translations place the stripes that the local branch crops.
    """

    def __init__(self, num_regions: int = 4, reduction: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.num_regions = int(num_regions)
        self.reduction = int(reduction)
        self.soft_attention = SoftAttention(self.reduction, dtype=self.dtype_policy, name="soft_attention")
        self.hard_attention = HardRegionalAttention(self.num_regions, dtype=self.dtype_policy, name="hard_attention")

    def build(self, input_shape):
        self.soft_attention.build(input_shape)
        self.hard_attention.build(input_shape)

    def call(self, inputs, training=None):
        return self.soft_attention(inputs, training=training), self.hard_attention(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape), (input_shape[0], self.num_regions, 2)

    def get_config(self):
        config = super().get_config()
        config.update(num_regions=self.num_regions, reduction=self.reduction)
        return config
