"""Hard regional attention of HA-CNN (§3.1 II): `T` translations of fixed-size horizontal stripes."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def stripe_centres(num_regions: int) -> np.ndarray:
    """Vertical centres `(2r + 1) / T - 1` of `T` equal stripes in normalised coordinates (torchreid's bias init)."""
    return (2.0 * np.arange(num_regions) + 1.0) / num_regions - 1.0


@keras.saving.register_keras_serializable(package="hacnn_tf")
class HardRegionalAttention(keras.layers.Layer):
    """Predicts the translations `(t_x, t_y)` of `T` regions from a feature map.

    Global average pool -> `Dense(2T)` -> tanh -> `(N, T, 2)`. As in torchreid the kernel starts at zero and the bias
    at `(0, c_r)` with `c_r` the stripe centres, so at initialisation the regions are `T` stacked horizontal stripes
    (centres `tanh(c_r)`, e.g. +-0.245 and +-0.635 for `T = 4`) whatever the input.

    Args:
        num_regions: the number of regions `T` (4 in the paper).

    Input `(N, H, W, C)`; output `(N, T, 2)` translations in `(-1, 1)`, last axis `(t_x, t_y)`.
    """

    def __init__(self, num_regions: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.num_regions = int(num_regions)
        if self.num_regions < 1:
            raise ValueError(f"`num_regions` must be positive; got {num_regions}")
        bias = np.zeros((self.num_regions, 2), dtype="float32")
        bias[:, 1] = stripe_centres(self.num_regions)
        self.fc = keras.layers.Dense(
            2 * self.num_regions,
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(bias.reshape(-1).tolist()),
            dtype=self.dtype_policy,
            name="fc",
        )

    def build(self, input_shape):
        self.fc.build((input_shape[0], input_shape[-1]))

    def call(self, inputs):
        theta = ops.tanh(self.fc(ops.mean(inputs, axis=(1, 2))))
        return ops.reshape(theta, (-1, self.num_regions, 2))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_regions, 2)

    def get_config(self):
        config = super().get_config()
        config.update(num_regions=self.num_regions)
        return config
