"""Every registered layer through Keras' own layer harness (`keras.src.testing.TestCase.run_layer_test`, as keras-hub
uses it): serialisation round trip, build, symbolic and eager calls, a training step, mixed precision, weight counts."""

import numpy as np
import tensorflow as tf
from keras.src.testing import TestCase

from hacnn_tf.layers import (
    ChannelAttention,
    ConvBNReLU,
    FusedBatchNormalization,
    HardRegionalAttention,
    HarmoniousAttention,
    ImageNormalization,
    InceptionA,
    InceptionB,
    RegionSampler,
    SoftAttention,
    SpatialAttention,
)


class LayerHarnessTest(TestCase):
    def test_conv_bn_relu(self):
        self.run_layer_test(
            ConvBNReLU,
            {"filters": 8, "kernel_size": 3, "strides": 2, "padding": 1},
            input_shape=(2, 16, 8, 3),
            expected_output_shape=(2, 8, 4, 8),
            expected_num_trainable_weights=4,
            expected_num_non_trainable_weights=2,
        )

    def test_fused_batch_normalization(self):
        self.run_layer_test(
            FusedBatchNormalization,
            {"momentum": 0.9, "epsilon": 1e-5},
            input_shape=(2, 4, 4, 8),
            expected_output_shape=(2, 4, 4, 8),
            expected_num_trainable_weights=2,
            expected_num_non_trainable_weights=2,
        )

    def test_inception_a(self):
        self.run_layer_test(
            InceptionA,
            {"filters": 16},
            input_shape=(2, 8, 4, 8),
            expected_output_shape=(2, 8, 4, 16),
            expected_num_trainable_weights=7 * 4,
            expected_num_non_trainable_weights=7 * 2,
        )

    def test_inception_b(self):
        self.run_layer_test(
            InceptionB,
            {"filters": 16, "nonnegative_inputs": True},
            input_shape=(2, 8, 4, 8),
            expected_output_shape=(2, 4, 2, 16),
            expected_num_trainable_weights=6 * 4,
            expected_num_non_trainable_weights=6 * 2,
        )

    def test_spatial_attention(self):
        self.run_layer_test(
            SpatialAttention,
            {},
            input_shape=(2, 8, 4, 16),
            expected_output_shape=(2, 8, 4, 1),
            expected_num_trainable_weights=8,
            expected_num_non_trainable_weights=4,
        )

    def test_channel_attention(self):
        self.run_layer_test(
            ChannelAttention,
            {"reduction": 4},
            input_shape=(2, 8, 4, 16),
            expected_output_shape=(2, 1, 1, 16),
            expected_num_trainable_weights=8,
            expected_num_non_trainable_weights=4,
        )

    def test_soft_attention(self):
        self.run_layer_test(
            SoftAttention,
            {"reduction": 4},
            input_shape=(2, 8, 4, 16),
            expected_output_shape=(2, 8, 4, 16),
            expected_num_trainable_weights=20,
            expected_num_non_trainable_weights=10,
        )

    def test_hard_regional_attention(self):
        self.run_layer_test(
            HardRegionalAttention,
            {"num_regions": 4},
            input_shape=(2, 8, 4, 16),
            expected_output_shape=(2, 4, 2),
            expected_num_trainable_weights=2,
        )

    def test_harmonious_attention(self):
        self.run_layer_test(
            HarmoniousAttention,
            {"num_regions": 4, "reduction": 4},
            input_shape=(2, 8, 4, 16),
            expected_output_shape=((2, 8, 4, 16), (2, 4, 2)),
            expected_num_trainable_weights=22,
            expected_num_non_trainable_weights=10,
        )

    def test_region_sampler(self):
        self.run_layer_test(
            RegionSampler,
            {"output_size": (3, 5), "scale": (0.25, 1.0)},
            input_shape={"features_shape": (2, 8, 4, 6), "translations_shape": (2, 4, 2)},
            expected_output_shape=(2, 4, 3, 5, 6),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            # The harness's fit step hands a two-input layer one dict; the sampler's gradients are
            # checked against autograd and finite differences in test_region_sampler.py.
            run_training_check=False,
        )

    def test_image_normalization(self):
        pixels = np.full((1, 2, 2, 3), 255.0, np.float32)
        expected = (1.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
        self.run_layer_test(
            ImageNormalization,
            {},
            input_data=pixels,
            expected_output=tf.constant(np.broadcast_to(expected, (1, 2, 2, 3)), tf.float32),
            expected_num_trainable_weights=0,
            run_training_check=False,
        )
