"""Soft attention of HA-CNN (§3.1 I): spatial attention, channel attention and their joint map."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from hacnn_tf.layers.conv import ConvBNReLU
from hacnn_tf.layers.interpolation import align_corners_resize_matrix

# The largest `(H * W) x (H / 2 * W / 2)` matrix `SpatialAttention` upsamples with in one product (4 MiB of float32:
# inputs up to 256 x 128 pixels); larger maps are upsampled one axis at a time.
MAX_UPSAMPLE_MATRIX_ELEMENTS = 1 << 20


@keras.saving.register_keras_serializable(package="hacnn_tf")
class SpatialAttention(keras.layers.Layer):
    """Spatial attention (§3.1 I.1): one map over `H x W` shared by all channels.

    Cross-channel mean -> 3x3 stride-2 ConvBNReLU (pad 1) -> bilinear x2 upsample with `align_corners=True` -> 1x1
    ConvBNReLU, as torchreid builds it (16 parameters with the BN and biases; the paper counts 10).

    The map being one channel, the upsample is a single product of the flattened `(N, H/2 * W/2)` map with the
    constant Kronecker product of the two axes' resize matrices: one matrix multiply, where the separable einsum
    becomes transposes around two products in every runtime (TFLite: two TRANSPOSE and two FULLY_CONNECTED per level).
    Maps whose matrix would exceed `MAX_UPSAMPLE_MATRIX_ELEMENTS` take the separable einsum.

    Input `(N, H, W, C)` with even `H` and `W`; output `(N, H, W, 1)`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.downsample = ConvBNReLU(1, 3, strides=2, padding=1, dtype=self.dtype_policy, name="conv1")
        self.scale = ConvBNReLU(1, 1, dtype=self.dtype_policy, name="conv2")

    def build(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None or height % 2 or width % 2:
            raise ValueError(f"SpatialAttention needs a static, even height and width; got input shape {input_shape}")
        self.downsample.build((input_shape[0], height, width, 1))
        self.scale.build((input_shape[0], height, width, 1))
        self._upsample_rows = align_corners_resize_matrix(height // 2, height)
        self._upsample_cols = align_corners_resize_matrix(width // 2, width)
        self._upsample = None
        if (height * width) ** 2 // 4 <= MAX_UPSAMPLE_MATRIX_ELEMENTS:
            # kron(rows, cols)[o * W + p, h * W/2 + w] = rows[o, h] * cols[p, w]: the row-major flattened maps.
            self._upsample = np.kron(
                self._upsample_rows.astype("float64"), self._upsample_cols.astype("float64")
            ).T.astype("float32")

    def call(self, inputs, training=None):
        height, width = inputs.shape[1], inputs.shape[2]
        x = ops.mean(inputs, axis=-1, keepdims=True)
        x = self.downsample(x, training=training)
        if self._upsample is None:
            x = ops.einsum(
                "oh,nhwc,pw->nopc", ops.cast(self._upsample_rows, x.dtype), x, ops.cast(self._upsample_cols, x.dtype)
            )
        else:
            x = ops.matmul(ops.reshape(x, (-1, (height // 2) * (width // 2))), ops.cast(self._upsample, x.dtype))
            x = ops.reshape(x, (-1, height, width, 1))
        return self.scale(x, training=training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], 1)


@keras.saving.register_keras_serializable(package="hacnn_tf")
class ChannelAttention(keras.layers.Layer):
    """Channel attention (§3.1 I.2): squeeze-and-excitation over channels.

    Global average pool -> 1x1 ConvBNReLU to `C / reduction` -> 1x1 ConvBNReLU back to `C` (torchreid ends in
    ReLU, not a sigmoid; the batch norms run on 1x1 maps, so over the batch only).

    Input `(N, H, W, C)`; output `(N, 1, 1, C)`.
    """

    def __init__(self, reduction: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.reduction = int(reduction)
        self.squeeze = None
        self.excite = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.reduction:
            raise ValueError(
                f"ChannelAttention: input channels ({channels}) must be divisible by `reduction` ({self.reduction})"
            )
        self.squeeze = ConvBNReLU(channels // self.reduction, 1, dtype=self.dtype_policy, name="conv1")
        self.excite = ConvBNReLU(channels, 1, dtype=self.dtype_policy, name="conv2")
        self.squeeze.build((input_shape[0], 1, 1, channels))
        self.excite.build((input_shape[0], 1, 1, channels // self.reduction))

    def call(self, inputs, training=None):
        x = ops.mean(inputs, axis=(1, 2), keepdims=True)
        return self.excite(self.squeeze(x, training=training), training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, 1, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(reduction=self.reduction)
        return config


@keras.saving.register_keras_serializable(package="hacnn_tf")
class SoftAttention(keras.layers.Layer):
    """Soft attention (§3.1 I): `sigmoid(ConvBNReLU_1x1(spatial * channel))`, one weight per feature.

    Because the 1x1 block ends in ReLU (torchreid, kept for checkpoint parity) the map lies in `[0.5, 1)`.

    The joint map `spatial (N, H, W, 1) * channel (N, 1, 1, C)` has rank one per image, so its 1x1 convolution is
    `spatial * (channel @ W) + b`: a `(1, C) @ (C, C)` product per image instead of a `C x C` convolution over every
    pixel (5 % of HA-CNN's multiply-adds, and the joint map is never materialised), with the same weights
    (`fuse`, torchreid's `conv`).

    Input `(N, H, W, C)`; output `(N, H, W, C)` attention map.
    """

    def __init__(self, reduction: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.reduction = int(reduction)
        self.spatial_attention = SpatialAttention(dtype=self.dtype_policy, name="spatial_attention")
        self.channel_attention = ChannelAttention(self.reduction, dtype=self.dtype_policy, name="channel_attention")
        self.fuse = None

    def build(self, input_shape):
        self.spatial_attention.build(input_shape)
        self.channel_attention.build(input_shape)
        self.fuse = ConvBNReLU(input_shape[-1], 1, dtype=self.dtype_policy, name="conv")
        self.fuse.build(input_shape)

    def call(self, inputs, training=None):
        spatial = self.spatial_attention(inputs, training=training)
        channel = self.channel_attention(inputs, training=training)
        if training:
            kernel, bias = self.fuse.conv.kernel, self.fuse.conv.bias
        else:
            kernel, bias = self.fuse.folded_kernel_and_bias()
        joint = spatial * ops.matmul(channel, ops.reshape(kernel, kernel.shape[2:])) + bias
        if training:
            joint = self.fuse.bn(joint, training=True)
        return ops.sigmoid(ops.relu(joint))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(reduction=self.reduction)
        return config
