import keras
import numpy as np
import tensorflow as tf
from conftest import run_layer_test

from hacnn_tf.layers import FusedBatchNormalization


def _pair(channels: int = 6, seed: int = 0):
    """The fused layer and Keras' own, with the same random gamma, beta and moving statistics."""
    rng = np.random.default_rng(seed)
    fused = FusedBatchNormalization(epsilon=1e-5, momentum=0.9)
    plain = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)
    for layer in (fused, plain):
        layer.build((None, 5, 7, channels))
    for name in ("gamma", "beta", "moving_mean"):
        value = rng.normal(size=channels).astype("float32")
        getattr(fused, name).assign(value)
        getattr(plain, name).assign(value)
    variance = rng.uniform(0.5, 2.0, size=channels).astype("float32")
    fused.moving_variance.assign(variance)
    plain.moving_variance.assign(variance)
    return fused, plain


def test_training_step_equals_keras_batch_norm():
    fused, plain = _pair()
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(2.0, 3.0, size=(4, 5, 7, 6)).astype("float32"))
    # A weight per element, not per channel: with a per-channel weight the gradient to gamma is sum(x_hat) * w = 0
    # analytically, and the two layers would be compared on their rounding noise.
    weights = tf.constant(rng.normal(size=(4, 5, 7, 6)).astype("float32"))
    outputs, gradients = [], []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * weights)
        gradients.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
        outputs.append(y)
    np.testing.assert_allclose(outputs[0], outputs[1], atol=2e-5)
    for got, expected in zip(*gradients):
        scale = float(np.max(np.abs(expected)))
        assert scale > 0.1  # every gradient is far from zero, so the tolerance below is a relative one
        np.testing.assert_allclose(got, expected, atol=1e-5 * scale, rtol=1e-4)
    # Moving statistics: momentum 0.9 towards the batch mean and the *biased* batch variance, as Keras does.
    np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance, plain.moving_variance, rtol=1e-5)
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), atol=1e-5)


def test_frozen_synchronized_and_half_precision_paths():
    x = tf.constant(np.random.default_rng(2).normal(size=(3, 5, 7, 6)).astype("float32"))
    fused, plain = _pair(seed=3)
    fused.trainable = plain.trainable = False  # frozen: moving statistics, no update
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), atol=1e-5)
    assert not fused._fusable(x, True, None)
    fused.trainable = True
    fused.synchronized = True  # multi-replica sync takes Keras' all-reducing path
    assert not fused._fusable(x, True, None)
    half = FusedBatchNormalization(dtype="mixed_float16")
    y = half(tf.cast(x, "float16"), training=True)
    assert y.dtype == tf.float16 and half.moving_mean.dtype == "float32"
    np.testing.assert_allclose(tf.reduce_mean(tf.cast(y, tf.float32), axis=(0, 1, 2)), 0.0, atol=2e-3)


def test_layer_contract():
    output = run_layer_test(
        FusedBatchNormalization,
        dict(epsilon=1e-5, momentum=0.9),
        np.ones((2, 3, 4, 5), "float32"),
        expected_output_shape=(2, 3, 4, 5),
        expected_trainable_weights=2,
        expected_trainable_params=10,
    )
    assert output.shape == (2, 3, 4, 5)
