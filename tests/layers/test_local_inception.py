import keras
import numpy as np
from conftest import run_layer_test

from hacnn_tf.layers import InceptionB, LocalInception


def regions(seed: int = 0) -> np.ndarray:
    """`(N=3, T=4, h=6, w=7, C=8)` non-negative crops (the local stream's inputs follow a ReLU)."""
    return np.abs(np.random.default_rng(seed).normal(size=(3, 4, 6, 7, 8))).astype("float32")


def _built_block(filters: int, channels: int) -> InceptionB:
    block = InceptionB(filters, nonnegative_inputs=True)
    block.build((None, 6, 7, channels))
    return block


def test_local_inception_layer_contract():
    """The weights are those of one Inception-B (shared by the regions), the output each region's, halved."""
    block = _built_block(16, 8)
    run_layer_test(
        LocalInception,
        dict(filters=16),
        regions(),
        expected_output_shape=(3, 4, 3, 4, 16),
        expected_trainable_weights=len(block.trainable_weights),
        expected_trainable_params=sum(int(np.prod(w.shape)) for w in block.trainable_weights),
    )


def test_each_region_goes_through_the_one_shared_inception_b():
    """Inference: the `N * T` batch gives, region by region, what the Inception-B gives for that region alone."""
    layer = LocalInception(16)
    x = regions(1)
    layer.build(x.shape)
    for variable in layer.block.trainable_variables:
        variable.assign(np.random.default_rng(2).normal(size=variable.shape).astype("float32") * 0.3)
    out = np.asarray(layer(x, training=False))
    for r in range(x.shape[1]):
        np.testing.assert_allclose(out[:, r], np.asarray(layer.block(x[:, r], training=False)), atol=1e-5)


def test_training_normalises_each_region_over_the_batch_and_updates_the_statistics_per_region():
    """Training: batch norm sees one region at a time, as torchreid's four calls, so the running statistics are
    updated `T` times (a merged `N * T` batch would update them once, with other values)."""
    layer, reference = LocalInception(16), _built_block(16, 8)
    x = regions(3)
    layer.build(x.shape)
    reference.set_weights(layer.block.get_weights())
    out = np.asarray(layer(x, training=True))
    expected = np.stack([np.asarray(reference(x[:, r], training=True)) for r in range(x.shape[1])], axis=1)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    for ours, theirs in zip(layer.block.non_trainable_variables, reference.non_trainable_variables):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-6)
    merged = _built_block(16, 8)
    merged.set_weights(layer.block.get_weights())
    merged(keras.ops.reshape(x, (-1, 6, 7, 8)), training=True)
    assert not np.allclose(
        np.asarray(merged.non_trainable_variables[0]), np.asarray(reference.non_trainable_variables[0])
    )
