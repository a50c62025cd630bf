"""The bilinear sampler of the hard regional attention (HA-CNN §3.1 II, torchreid `HACNN.stn` + resize)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from hacnn_tf.layers.interpolation import resized_grid_sample_matrix


@keras.saving.register_keras_serializable(package="hacnn_tf")
class RegionSampler(keras.layers.Layer):
    """Crops `T` horizontal stripes out of a feature map and resizes them to the local stream's size.

    Equal to PyTorch's `F.affine_grid(theta, x.size())` + `F.grid_sample(x, grid)` (bilinear, zero padding) followed
    by `F.interpolate(size=output_size, mode="bilinear", align_corners=True)`, for the axis-aligned transform
    `theta = [[scale_x, 0, t_x], [0, scale_y, t_y]]` that HA-CNN learns. Because `theta` has no rotation or shear
    the sampling is separable: per region, `crop = A_y @ x @ A_x^T` with `A = resize_matrix @ grid_sample_matrix(t)`
    (built without the product: `resized_grid_sample_matrix`), two batched matmuls laid out so that neither needs a
    transpose of the feature maps. Only builtin TFLite ops result (slice, abs, relu, sum, batch matmul), all of which
    XNNPACK runs, and gradients reach `t` through the positions `p`.

    Args:
        output_size: `(height, width)` of each resized crop, e.g. `(24, 28)` at level 1.
        scale: `(scale_y, scale_x)`, the fixed diagonal of `theta`; HA-CNN uses `(1 / T, 1.0)`.
        align_corners: `grid_sample`'s flag (PyTorch >= 1.3 defaults to False; earlier versions behaved as True).

    Call arguments:
        features: `(N, H, W, C)` feature map.
        translations: `(N, T, 2)` region translations `(t_x, t_y)` in normalised coordinates.

    Returns:
        `(N, T, output_height, output_width, C)` crops.
    """

    def __init__(
        self,
        output_size: Sequence[int],
        scale: Sequence[float] = (0.25, 1.0),
        align_corners: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.output_size = tuple(int(s) for s in output_size)
        self.scale = tuple(float(s) for s in scale)
        self.align_corners = bool(align_corners)
        if len(self.output_size) != 2 or min(self.output_size) < 1:
            raise ValueError(f"`output_size` must be two positive integers (height, width); got {output_size}")
        if len(self.scale) != 2:
            raise ValueError(f"`scale` must be (scale_y, scale_x); got {scale}")

    def build(self, features_shape, translations_shape):
        """No weights; checks that the feature map's height and width are static and the translations `(N, T, 2)`."""
        if features_shape[1] is None or features_shape[2] is None:
            raise ValueError(f"RegionSampler needs a static feature height and width; got shape {features_shape}")
        if len(translations_shape) != 3 or translations_shape[-1] != 2:
            raise ValueError(f"RegionSampler translations must be (N, T, 2); got shape {translations_shape}")
        self.built = True

    def sampling_matrices(self, translations, height: int, width: int):
        """`(N, T, out_h, H)` and `(N, T, out_w, W)` matrices that map the input rows and columns to a crop."""
        # The sampling positions need float32 at least, also under mixed precision (80 rows, sub-pixel steps).
        translations = ops.cast(translations, "float64" if self.compute_dtype == "float64" else "float32")
        scale_y, scale_x = self.scale
        # Slices that keep the axis, then a reshape: TFLite's strided slice that drops an axis falls out of XNNPACK,
        # and a split's two outputs lose the names by which the int8 quantiser keeps this layer float.
        translation_x = ops.reshape(translations[:, :, 0:1], (-1, translations.shape[1]))
        translation_y = ops.reshape(translations[:, :, 1:2], (-1, translations.shape[1]))
        out_height, out_width = self.output_size
        matrix_y = resized_grid_sample_matrix(translation_y, scale_y, height, out_height, self.align_corners)
        matrix_x = resized_grid_sample_matrix(translation_x, scale_x, width, out_width, self.align_corners)
        return matrix_y, matrix_x

    def call(self, features, translations):
        height, width = features.shape[1], features.shape[2]
        matrix_y, matrix_x = self.sampling_matrices(translations, height, width)
        matrix_y = ops.cast(matrix_y, features.dtype)
        matrix_x = ops.cast(matrix_x, features.dtype)
        num_regions, out_height = matrix_y.shape[1], matrix_y.shape[2]
        channels = features.shape[-1]
        # Rows: one (T * out_h, H) @ (H, W * C) product per image, on the NHWC map as it lies in memory.
        rows = ops.matmul(
            ops.reshape(matrix_y, (-1, num_regions * out_height, height)),
            ops.reshape(features, (-1, height, width * channels)),
        )
        rows = ops.reshape(rows, (-1, num_regions, out_height, width, channels))
        # Columns: (out_w, W) @ (W, C) per crop row, the region's matrix broadcast over the rows. Written as the
        # einsum "ntowc,ntpw->ntopc" the runtime transposes the crops there and back (2.5x slower at batch 64).
        return ops.matmul(matrix_x[:, :, None], rows)

    def compute_output_shape(self, features_shape, translations_shape):
        return (features_shape[0], translations_shape[1], *self.output_size, features_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(output_size=self.output_size, scale=self.scale, align_corners=self.align_corners)
        return config
