"""The two Inception blocks of HA-CNN (Fig. 2 (a) and (b); torchreid `InceptionA`, `InceptionB`)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from hacnn_tf.layers.conv import ConvBNReLU


def _check_filters(filters: int) -> int:
    filters = int(filters)
    if filters < 4 or filters % 4:
        raise ValueError(f"Inception `filters` must be a positive multiple of 4; got {filters}")
    return filters


def _build_chain(layers, input_shape) -> tuple:
    shape = tuple(input_shape)
    for layer in layers:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def _apply_chain(layers, x, training):
    for layer in layers:
        x = layer(x, training=training)
    return x


@keras.saving.register_keras_serializable(package="hacnn_tf")
class InceptionA(keras.layers.Layer):
    """Inception-A: four streams of `filters / 4` channels, spatial size kept.

    Streams 1-3 are 1x1 -> 3x3 (pad 1) ConvBNReLU chains with their own weights; stream 4 is a 3x3 stride-1 average
    pool whose zero padding counts in the mean (PyTorch's `count_include_pad=True`) followed by a 1x1 ConvBNReLU.
    That pool is a 3x3 depthwise convolution with every weight 1/9 and "same" (zero) padding: no separate pad, and an
    op that integer runtimes run as int8 (XNNPACK runs no int8 AVERAGE_POOL_2D, so the pool split the int8 TFLite
    graph at every level).

    Input `(N, H, W, C)`; output `(N, H, W, filters)`.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = _check_filters(filters)
        mid = self.filters // 4
        policy = self.dtype_policy
        self.stream1, self.stream2, self.stream3 = (
            [
                ConvBNReLU(mid, 1, dtype=policy, name=f"stream{i}_reduce"),
                ConvBNReLU(mid, 3, padding=1, dtype=policy, name=f"stream{i}_conv"),
            ]
            for i in (1, 2, 3)
        )
        self.pool_projection = ConvBNReLU(mid, 1, dtype=policy, name="stream4_projection")

    def build(self, input_shape):
        for stream in (self.stream1, self.stream2, self.stream3):
            _build_chain(stream, input_shape)
        self.pool_projection.build(input_shape)

    def call(self, inputs, training=None):
        outputs = [_apply_chain(stream, inputs, training) for stream in (self.stream1, self.stream2, self.stream3)]
        ninths = ops.convert_to_tensor(np.full((3, 3, inputs.shape[-1], 1), 1.0 / 9.0), dtype=inputs.dtype)
        pooled = ops.depthwise_conv(inputs, ninths, strides=1, padding="same")
        outputs.append(self.pool_projection(pooled, training=training))
        return ops.concatenate(outputs, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters)
        return config


@keras.saving.register_keras_serializable(package="hacnn_tf")
class InceptionB(keras.layers.Layer):
    """Inception-B: three streams that halve the spatial size (`ceil(n / 2)`, as PyTorch's stride 2 with pad 1).

    Stream 1: 1x1 -> 3x3 stride 2; stream 2: 1x1 -> 3x3 -> 3x3 stride 2 (each `filters / 4` channels); stream 3:
    3x3 stride-2 max pool (pad 1) -> 1x1 with `filters / 2` channels. The max pool pads by repeating the edge,
    which gives the same maximum as PyTorch's -inf padding for any input; with `nonnegative_inputs` it pads with
    zeros, the same maximum for inputs >= 0 and 2-3x cheaper (TFLite's MIRROR_PAD also falls out of XNNPACK).

    Args:
        filters: output channels, a multiple of 4.
        nonnegative_inputs: the caller guarantees inputs >= 0 (HA-CNN's are post-ReLU maps, attention-weighted
            maps and bilinear crops of them).

    Input `(N, H, W, C)`; output `(N, ceil(H / 2), ceil(W / 2), filters)`.
    """

    def __init__(self, filters: int, nonnegative_inputs: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filters = _check_filters(filters)
        self.nonnegative_inputs = bool(nonnegative_inputs)
        mid = self.filters // 4
        policy = self.dtype_policy
        self.stream1 = [
            ConvBNReLU(mid, 1, dtype=policy, name="stream1_reduce"),
            ConvBNReLU(mid, 3, strides=2, padding=1, dtype=policy, name="stream1_conv"),
        ]
        self.stream2 = [
            ConvBNReLU(mid, 1, dtype=policy, name="stream2_reduce"),
            ConvBNReLU(mid, 3, padding=1, dtype=policy, name="stream2_conv1"),
            ConvBNReLU(mid, 3, strides=2, padding=1, dtype=policy, name="stream2_conv2"),
        ]
        self.pool_projection = ConvBNReLU(2 * mid, 1, dtype=policy, name="stream3_projection")

    def build(self, input_shape):
        _build_chain(self.stream1, input_shape)
        _build_chain(self.stream2, input_shape)
        self.pool_projection.build(self.compute_output_shape(input_shape)[:3] + (input_shape[-1],))

    def call(self, inputs, training=None):
        stream1 = _apply_chain(self.stream1, inputs, training)
        stream2 = _apply_chain(self.stream2, inputs, training)
        padded = ops.pad(
            inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="constant" if self.nonnegative_inputs else "symmetric"
        )
        pooled = ops.max_pool(padded, 3, strides=2, padding="valid")
        stream3 = self.pool_projection(pooled, training=training)
        return ops.concatenate([stream1, stream2, stream3], axis=-1)

    def compute_output_shape(self, input_shape):
        def half(n):
            return None if n is None else (n - 1) // 2 + 1

        return (input_shape[0], half(input_shape[1]), half(input_shape[2]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, nonnegative_inputs=self.nonnegative_inputs)
        return config
