import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
import torch.nn.functional as F
from ai_edge_litert.interpreter import Interpreter
from conftest import run_layer_test

from hacnn_tf.export.tflite import tflite_op_counts
from hacnn_tf.layers import RegionSampler
from hacnn_tf.layers.interpolation import (
    align_corners_resize_matrix,
    grid_sample_matrix,
    resized_grid_sample_matrix,
)

# (input H, W) of the cropped tensor and the local stream size at each HA-CNN level (160 x 64 input).
LEVELS = [((80, 32), (24, 28)), ((40, 16), (12, 14)), ((20, 8), (6, 7))]


def torch_reference(x_nhwc, translations, output_size, align_corners, dtype=torch.float64):
    """PyTorch's affine_grid + grid_sample + align-corners interpolate, one region at a time."""
    x = torch.as_tensor(x_nhwc, dtype=dtype).permute(0, 3, 1, 2)
    t = torch.as_tensor(translations, dtype=dtype)
    crops = []
    for region in range(t.shape[1]):
        theta = torch.zeros(x.shape[0], 2, 3, dtype=dtype)
        theta[:, 0, 0] = 1.0
        theta[:, 1, 1] = 1.0 / t.shape[1]
        theta[:, :, 2] = t[:, region]
        grid = F.affine_grid(theta, list(x.shape), align_corners=align_corners)
        sampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
        crops.append(F.interpolate(sampled, size=output_size, mode="bilinear", align_corners=True))
    return torch.stack(crops, dim=1).permute(0, 1, 3, 4, 2)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("input_size,output_size", LEVELS)
def test_sampler_equals_pytorch_grid_sample(align_corners, input_size, output_size):
    rng = np.random.default_rng(sum(input_size) + align_corners)
    x = rng.normal(size=(3, *input_size, 5)).astype("float32")
    # Translations over the whole range, so stripes also leave the image (zero padding).
    t = rng.uniform(-1.0, 1.0, size=(3, 4, 2)).astype("float32")
    output = run_layer_test(
        RegionSampler,
        dict(output_size=output_size, scale=(0.25, 1.0), align_corners=align_corners),
        (x, t),
        expected_output_shape=(3, 4, *output_size, 5),
        expected_trainable_weights=0,
        expected_trainable_params=0,
    )
    expected = torch_reference(x, t, output_size, align_corners).numpy()
    np.testing.assert_allclose(np.asarray(output), expected, atol=1e-5, rtol=0)
    # PyTorch's own float32 result is within its own rounding of the float64 one (ours is 3-5x closer).
    expected32 = torch_reference(x, t, output_size, align_corners, dtype=torch.float32).numpy()
    np.testing.assert_allclose(np.asarray(output), expected32, atol=5e-5, rtol=0)


def test_sampler_at_identity_and_zero_padding():
    # scale 1, t = 0, align_corners=True and no resize: grid_sample reproduces the input exactly.
    x = np.random.default_rng(0).normal(size=(2, 6, 5, 3)).astype("float32")
    identity = RegionSampler((6, 5), scale=(1.0, 1.0), align_corners=True)(x, np.zeros((2, 1, 2), "float32"))
    np.testing.assert_allclose(np.asarray(identity)[:, 0], x, atol=1e-6)
    # A shift past the width (t_x = 2.5 in normalised units) moves the image out: zero padding gives zeros.
    outside = RegionSampler((6, 5), scale=(1.0, 1.0), align_corners=True)(x, np.full((2, 1, 2), 2.5, "float32"))
    np.testing.assert_array_equal(np.asarray(outside), 0.0)
    # Half a pixel past the last column: half of its value survives (bilinear against the zero pad).
    half = RegionSampler((6, 5), scale=(1.0, 1.0), align_corners=True)(x, np.array([[[2.25, 0.0]]] * 2, "float32"))
    np.testing.assert_allclose(np.asarray(half)[:, 0, :, 0], 0.5 * x[:, :, -1], atol=1e-6)


def test_align_corners_resize_matrix_is_pytorch_interpolate():
    x = torch.randn(1, 1, 7, 1, dtype=torch.float64)
    for size_out in (1, 3, 7, 12):
        expected = F.interpolate(x, size=(size_out, 1), mode="bilinear", align_corners=True)[0, 0, :, 0].numpy()
        np.testing.assert_allclose(
            align_corners_resize_matrix(7, size_out) @ x[0, 0, :, 0].numpy(), expected, atol=1e-6
        )


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size,output_size", [(80, 24), (32, 28), (8, 7), (7, 1), (5, 5), (10, 17)])
def test_resized_grid_sample_matrix_is_the_product(align_corners, size, output_size):
    # The closed form against the product it replaces, resize @ grid_sample, in float64 (downsampling, the same
    # size, upsampling and a single output row; translations that push the stripe off the image).
    t = tf.constant(np.random.default_rng(size).uniform(-1.5, 1.5, (3, 4)), tf.float64)
    product = np.einsum(
        "oi,ntij->ntoj",
        align_corners_resize_matrix(size, output_size).astype("float64"),
        grid_sample_matrix(t, 0.25, size, align_corners).numpy(),
    )
    closed = resized_grid_sample_matrix(t, 0.25, size, output_size, align_corners).numpy()
    assert closed.shape == (3, 4, output_size, size)
    np.testing.assert_allclose(closed, product, atol=5e-6, rtol=0)
    assert np.abs(product).max() > 0.5  # not all padding


@pytest.mark.parametrize("align_corners", [False, True])
def test_sampler_gradient_wrt_translations(align_corners):
    rng = np.random.default_rng(7)
    (height, width), output_size = LEVELS[1]
    x = rng.normal(size=(2, height, width, 3)).astype("float32")
    t = rng.uniform(-0.8, 0.8, size=(2, 4, 2)).astype("float32")
    weights = rng.normal(size=(2, 4, *output_size, 3)).astype("float32")
    sampler = RegionSampler(output_size, align_corners=align_corners)

    def loss(translations):
        return tf.reduce_sum(sampler(tf.constant(x), translations) * weights)

    translations = tf.Variable(t)
    with tf.GradientTape() as tape:
        value = loss(translations)
    gradient = tape.gradient(value, translations).numpy()
    assert np.abs(gradient).max() > 1.0  # the hard attention does learn through the sampler

    # Against PyTorch autograd through grid_sample (float64).
    t_torch = torch.tensor(t, dtype=torch.float64, requires_grad=True)
    reference = torch_reference(x, t_torch, output_size, align_corners) * torch.as_tensor(weights, dtype=torch.float64)
    reference.sum().backward()
    np.testing.assert_allclose(gradient, t_torch.grad.numpy(), rtol=1e-4, atol=1e-3)

    # Against central finite differences in float64 (the loss is piecewise linear in each t, with kinks where a
    # sampling position crosses a pixel; a 1e-7 step stays on one piece).
    sampler64 = RegionSampler(output_size, align_corners=align_corners, dtype="float64")
    x64, t64, weights64 = x.astype("float64"), t.astype("float64"), weights.astype("float64")
    step = 1e-7
    numeric = np.zeros_like(t64)
    for index in np.ndindex(t.shape):
        plus, minus = t64.copy(), t64.copy()
        plus[index] += step
        minus[index] -= step
        difference = np.sum((np.asarray(sampler64(x64, plus)) - np.asarray(sampler64(x64, minus))) * weights64)
        numeric[index] = difference / (2 * step)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-3)


def test_sampler_converts_to_tflite_builtin_ops_only():
    features = keras.Input((40, 16, 8), batch_size=1)
    translations = keras.Input((4, 2), batch_size=1)
    model = keras.Model([features, translations], RegionSampler((12, 14))(features, translations))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # raises if any op needs Flex
    flatbuffer = converter.convert()
    assert b"FlexImageProjectiveTransform" not in flatbuffer and b"CropAndResize" not in flatbuffer
    # No transposes (an einsum's lowering) and no axis-dropping strided slice (XNNPACK leaves it to TFLite): the
    # sampler is one XNNPACK partition that no op of TFLite's own interrupts.
    ops = tflite_op_counts(flatbuffer)
    assert "TRANSPOSE" not in ops and ops["BATCH_MATMUL"] == 2, ops
    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    executed = [detail["op_name"] for detail in interpreter._get_ops_details()]
    assert executed.count("DELEGATE") == 1, ops
