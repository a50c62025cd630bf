"""Convolution + batch normalisation + ReLU with PyTorch's padding (torchreid `ConvBlock`)."""

from __future__ import annotations

import keras
from keras import ops

from hacnn_tf.layers.normalization import FusedBatchNormalization

# PyTorch's default `kaiming_uniform_(a=sqrt(5))` for conv and linear kernels: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
TORCH_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_in", "distribution": "uniform"},
}

# PyTorch BatchNorm defaults: eps 1e-5, momentum 0.1 (Keras counts momentum the other way round).
BATCH_NORM_EPSILON = 1e-5
BATCH_NORM_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="hacnn_tf")
class ConvBNReLU(keras.layers.Layer):
    """`Conv2D` (with bias) -> `BatchNormalization` -> ReLU, padded symmetrically as PyTorch pads.

    Keras' `padding="same"` pads stride-2 convolutions asymmetrically (0 before, 1 after), which shifts every pixel
    against PyTorch; here the input is zero-padded by `padding` on both sides and convolved with `"valid"`.

    Args:
        filters: output channels.
        kernel_size: square kernel size.
        strides: stride of the convolution.
        padding: zero padding on each side of both spatial axes (PyTorch's `padding=`).

    Input `(N, H, W, C)`; output `(N, (H + 2p - k) // s + 1, (W + 2p - k) // s + 1, filters)`.
    """

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, padding: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.padding = int(padding)
        self.conv = keras.layers.Conv2D(
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding="valid",
            use_bias=True,
            kernel_initializer=keras.initializers.get(TORCH_KERNEL_INITIALIZER),
            dtype=self.dtype_policy,
            name="conv",
        )
        self.bn = FusedBatchNormalization(
            epsilon=BATCH_NORM_EPSILON, momentum=BATCH_NORM_MOMENTUM, dtype=self.dtype_policy, name="bn"
        )

    def build(self, input_shape):
        padded = list(input_shape)
        for axis in (1, 2):
            if padded[axis] is not None:
                padded[axis] += 2 * self.padding
        self.conv.build(tuple(padded))
        self.bn.build(self.conv.compute_output_shape(tuple(padded)))

    def call(self, inputs, training=None):
        if self.padding:
            p = self.padding
            inputs = ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]])
        if training:
            return ops.relu(self.bn(self.conv(inputs), training=True))
        kernel, bias = self.folded_kernel_and_bias()
        return ops.relu(ops.conv(inputs, kernel, strides=self.strides, padding="valid") + bias)

    def folded_kernel_and_bias(self):
        """The kernel and bias of the convolution with the inference-mode batch norm folded in.

        `bn(conv(x))` with the moving statistics is `conv(x) * s + (b - mean) * s + beta`, `s = gamma /
        sqrt(var + eps)`: one convolution with kernel `k * s` and bias `(b - mean) * s + beta`, which the runtime fuses
        with the ReLU (oneDNN in TensorFlow, XNNPACK in TFLite) instead of three passes over the activations. Folded
        in float32 (also under mixed precision), then cast to the compute dtype.
        """
        bn = self.bn
        scale = ops.cast(bn.gamma, "float32") * ops.rsqrt(ops.cast(bn.moving_variance, "float32") + bn.epsilon)
        kernel = ops.cast(self.conv.kernel, "float32") * scale
        bias = (ops.cast(self.conv.bias, "float32") - ops.cast(bn.moving_mean, "float32")) * scale
        bias = bias + ops.cast(bn.beta, "float32")
        return ops.cast(kernel, self.compute_dtype), ops.cast(bias, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        def size(n):
            return None if n is None else (n + 2 * self.padding - self.kernel_size) // self.strides + 1

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides, padding=self.padding)
        return config
