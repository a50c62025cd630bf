"""Bilinear interpolation as matrices: PyTorch's align-corners resize and `affine_grid` + `grid_sample`.

Bilinear sampling of one axis at real positions `p` is the matrix `W[i, j] = max(0, 1 - |p_i - j|)`: each output row
holds the two tent weights of its neighbours, and positions outside `[0, n - 1]` lose the weights of the missing
neighbours, which is exactly `grid_sample(padding_mode="zeros")`. Separable resizes and axis-aligned crops are then
two small matrix products, which XLA fuses and TFLite runs with builtin ops only
(docs/architecture.md#the-region-sampler).
"""

from __future__ import annotations

import numpy as np
from keras import ops


def _align_corners_positions(size_in: int, size_out: int) -> np.ndarray:
    """The input positions `(size_out,)` that an `align_corners=True` resize reads, in float64."""
    if size_out == 1:
        return np.zeros(1)
    return np.arange(size_out) * ((size_in - 1) / (size_out - 1))


def align_corners_resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """Constant `(size_out, size_in)` matrix of PyTorch's bilinear resize with `align_corners=True`."""
    positions = _align_corners_positions(size_in, size_out)
    return np.maximum(0.0, 1.0 - np.abs(positions[:, None] - np.arange(size_in)[None, :])).astype("float32")


def half_pixel_resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """Constant `(size_out, size_in)` matrix of the bilinear resize with half-pixel centres and edges clamped
    (`tf.image.resize(method="bilinear")` without antialiasing; PyTorch's `align_corners=False`)."""
    positions = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0.0, size_in - 1)
    return np.maximum(0.0, 1.0 - np.abs(positions[:, None] - np.arange(size_in)[None, :]))


def _grid_positions(scale: float, size: int, align_corners: bool) -> tuple[float, np.ndarray]:
    """`(gain, offset)` of the positions `p_i = gain * t + offset_i` at which `affine_grid` + `grid_sample` read an
    axis of `size` pixels for the translation `t`, in float64."""
    if align_corners:
        base = np.linspace(-1.0, 1.0, size)
        gain = 0.5 * (size - 1)
        offset = (scale * base + 1.0) * gain
    else:
        base = (2.0 * np.arange(size) + 1.0) / size - 1.0
        gain = 0.5 * size
        offset = (scale * base + 1.0) * gain - 0.5
    return gain, offset


def grid_sample_matrix(translation, scale: float, size: int, align_corners: bool):
    """Bilinear weights `(..., size, size)` with which `affine_grid` + `grid_sample` read one axis.

    Output pixel `i` of the axis reads the input at `p_i = gain * t + offset_i` (PyTorch's unnormalised grid for the
    base coordinate `b_i`, scaled by `scale` and shifted by `t`), with weight `max(0, 1 - |p_i - j|)` on input pixel
    `j`. The constant `offset_i - j` is folded in float64, so float32 rounds once, on `gain * t`, and the weights keep
    about 2e-6 absolute accuracy even on the 80-pixel axis.

    Args:
        translation: `(...)` normalised translations `t` (the `theta[:, :, 2]` column).
        scale: the fixed diagonal entry of `theta` for this axis.
        size: the number of pixels of the axis (the sampled output has the same size as the input).
        align_corners: PyTorch's flag; checkpoints trained before PyTorch 1.3 behave as `True`.
    """
    gain, offset = _grid_positions(scale, size, align_corners)
    distance_at_zero = (offset[:, None] - np.arange(size)[None, :]).astype("float32")
    distance = gain * translation[..., None, None] + ops.convert_to_tensor(distance_at_zero, dtype=translation.dtype)
    return ops.relu(1.0 - ops.abs(distance))


def resized_grid_sample_matrix(translation, scale: float, size: int, output_size: int, align_corners: bool):
    """`align_corners_resize_matrix(size, output_size) @ grid_sample_matrix(translation, scale, size, ...)`,
    `(..., output_size, size)`: one axis of a `grid_sample` crop resized to `output_size` with `align_corners=True`,
    computed without the product.

    Row `o` of the resize matrix holds two weights, `1 - f_o` on input row `r_o` and `f_o` on `r_o + 1`, so row `o`
    of the product is the same blend of two rows of the sampling matrix: `sum_k w_ko * max(0, 1 - |p_(r_o + k) - j|)`
    over the two neighbours `k`, elementwise ops on `(..., 2, output_size, size)` with constant coefficients, where
    the product form computes a `size x size` sampling matrix and a matrix product per region (an einsum, which
    runtimes lower to transposes around a batch matmul). The distances are those of `grid_sample_matrix` (float32
    rounds once, on `gain * t`), and the weights `w` multiply the tents, so the accuracy is the same.
    """
    gain, offset = _grid_positions(scale, size, align_corners)
    positions = _align_corners_positions(size, output_size)
    lower = np.clip(np.floor(positions), 0, size - 1).astype(int)
    upper = np.minimum(lower + 1, size - 1)
    fraction = positions - lower
    weights = np.stack([1.0 - fraction, fraction])[:, :, None]  # (2, output_size, 1)
    distance_at_zero = np.stack([offset[lower], offset[upper]])[:, :, None] - np.arange(size)[None, None, :]
    dtype = translation.dtype
    distance = gain * translation[..., None, None, None] + ops.convert_to_tensor(
        distance_at_zero.astype("float32"), dtype=dtype
    )
    tents = ops.relu(1.0 - ops.abs(distance))
    return ops.sum(ops.convert_to_tensor(weights.astype("float32"), dtype=dtype) * tents, axis=-3)
