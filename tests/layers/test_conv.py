import numpy as np
import pytest
import torch
from conftest import (
    assert_matches_reference,
    load_torchreid_module,
    randomize_torch_module,
    run_layer_test,
    to_nhwc,
)

from hacnn_tf.convert.torchreid import conv_bn_variables
from hacnn_tf.layers import ConvBNReLU


@pytest.mark.parametrize(
    "kernel,stride,padding,size", [(3, 2, 1, (80, 32)), (3, 2, 1, (6, 7)), (1, 1, 0, (5, 4)), (3, 1, 1, (7, 7))]
)
def test_conv_bn_relu_matches_torchreid_conv_block(torchreid_hacnn, kernel, stride, padding, size):
    reference = torchreid_hacnn.ConvBlock(5, 8, kernel, s=stride, p=padding)
    randomize_torch_module(reference, seed=kernel + stride)
    reference.eval()
    x = torch.randn(2, 5, *size, generator=torch.Generator().manual_seed(0))
    expected_hw = tuple((n + 2 * padding - kernel) // stride + 1 for n in size)

    run_layer_test(
        ConvBNReLU,
        dict(filters=8, kernel_size=kernel, strides=stride, padding=padding),
        to_nhwc(torch.zeros(2, 5, *size)),
        expected_output_shape=(2, *expected_hw, 8),
        expected_trainable_weights=4,
        expected_trainable_params=kernel * kernel * 5 * 8 + 8 + 2 * 8,
    )
    layer = ConvBNReLU(8, kernel, strides=stride, padding=padding)
    layer.build((None, *size, 5))
    assert_matches_reference(layer, conv_bn_variables(layer, "m"), reference, x)


def test_stride_two_padding_is_symmetric_like_pytorch():
    # A 1-channel identity-like kernel that picks the top-left tap: with PyTorch padding the first output reads the
    # zero pad, with Keras "same" padding it would read pixel (0, 0).
    layer = ConvBNReLU(1, 3, strides=2, padding=1)
    layer.build((None, 4, 4, 1))
    kernel = np.zeros((3, 3, 1, 1), "float32")
    kernel[0, 0] = 1.0
    layer.conv.kernel.assign(kernel)
    x = np.arange(1, 17, dtype="float32").reshape(1, 4, 4, 1)
    out = np.asarray(layer(x, training=False))[0, :, :, 0]
    scale = 1.0 / np.sqrt(1.0 + 1e-5)  # fresh batch norm: mean 0, variance 1
    np.testing.assert_allclose(out, np.array([[0.0, 0.0], [0.0, 6.0]]) * scale, rtol=1e-6)


def test_reference_module_loads_without_torchreid_package_init():
    module = load_torchreid_module("reid/models/hacnn.py")
    assert hasattr(module, "HACNN")
