import numpy as np
import pytest
import torch
from conftest import assert_matches_reference, randomize_torch_module, run_layer_test, to_nhwc

from hacnn_tf.convert.torchreid import (
    assign_torchreid_tensors,
    conv_bn_variables,
    dense_variables,
    harmonious_attention_variables,
)
from hacnn_tf.layers import (
    ChannelAttention,
    HardRegionalAttention,
    HarmoniousAttention,
    SoftAttention,
    SpatialAttention,
)
from hacnn_tf.layers.regional import stripe_centres


def features(c=32, h=10, w=4, n=3, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_spatial_attention_matches_torchreid(torchreid_hacnn):
    reference = torchreid_hacnn.SpatialAttn()
    randomize_torch_module(reference, seed=3)
    reference.eval()
    x = features()
    run_layer_test(
        SpatialAttention, {}, to_nhwc(x), (3, 10, 4, 1), expected_trainable_weights=8, expected_trainable_params=16
    )
    layer = SpatialAttention()
    layer.build((None, 10, 4, 32))
    assert_matches_reference(
        layer,
        [*conv_bn_variables(layer.downsample, "m.conv1"), *conv_bn_variables(layer.scale, "m.conv2")],
        reference,
        x,
    )


def test_spatial_attention_upsamples_in_one_product_as_the_separable_einsum(monkeypatch):
    from hacnn_tf.layers import attention

    # Channel means that vary from pixel to pixel (a uniform map would upsample to itself by any method).
    x = to_nhwc(features(h=40, w=16, seed=7) * features(c=1, h=40, w=16, seed=8) * 4.0)
    one_product = SpatialAttention()
    one_product.build(x.shape)
    assert one_product._upsample.shape == (20 * 8, 40 * 16)
    monkeypatch.setattr(attention, "MAX_UPSAMPLE_MATRIX_ELEMENTS", 0)
    separable = SpatialAttention()
    separable.build(x.shape)
    assert separable._upsample is None
    rng = np.random.default_rng(0)
    # Positive kernels and gammas: neither ReLU is dead.
    weights = [
        rng.uniform(0.5, 2.0, size=w.shape).astype("float32")
        if w.path.endswith(("kernel", "gamma", "variance"))
        else rng.normal(scale=0.1, size=w.shape).astype("float32")
        for w in one_product.weights
    ]
    one_product.set_weights(weights)
    separable.set_weights(weights)
    expected = np.asarray(separable(x))
    assert expected.std() > 0.1
    np.testing.assert_allclose(np.asarray(one_product(x)), expected, rtol=1e-5, atol=1e-5)


def test_spatial_attention_rejects_odd_sizes():
    with pytest.raises(ValueError, match="even height and width"):
        SpatialAttention()(np.zeros((1, 5, 4, 8), "float32"))


def test_channel_attention_matches_torchreid(torchreid_hacnn):
    reference = torchreid_hacnn.ChannelAttn(32)
    randomize_torch_module(reference, seed=4)
    reference.eval()
    x = features()
    run_layer_test(
        ChannelAttention,
        {"reduction": 16},
        to_nhwc(x),
        (3, 1, 1, 32),
        expected_trainable_weights=8,
        expected_trainable_params=(32 * 2 + 2 + 4) + (2 * 32 + 32 + 64),
    )
    layer = ChannelAttention()
    layer.build((None, 10, 4, 32))
    assert_matches_reference(
        layer, [*conv_bn_variables(layer.squeeze, "m.conv1"), *conv_bn_variables(layer.excite, "m.conv2")], reference, x
    )


def test_soft_attention_matches_torchreid_and_lies_in_half_to_one(torchreid_hacnn):
    reference = torchreid_hacnn.SoftAttn(32)
    randomize_torch_module(reference, seed=5)
    reference.eval()
    x = features()
    output = run_layer_test(
        SoftAttention,
        {},
        to_nhwc(x),
        (3, 10, 4, 32),
        expected_trainable_weights=20,
        expected_trainable_params=16 + 230 + (32 * 32 + 32 + 64),
    )
    assert float(np.min(output)) >= 0.5 and float(np.max(output)) < 1.0  # sigmoid(ReLU(.)), torchreid's quirk
    layer = SoftAttention()
    layer.build((None, 10, 4, 32))
    assert_matches_reference(
        layer,
        [
            *conv_bn_variables(layer.spatial_attention.downsample, "m.spatial_attn.conv1"),
            *conv_bn_variables(layer.spatial_attention.scale, "m.spatial_attn.conv2"),
            *conv_bn_variables(layer.channel_attention.squeeze, "m.channel_attn.conv1"),
            *conv_bn_variables(layer.channel_attention.excite, "m.channel_attn.conv2"),
            *conv_bn_variables(layer.fuse, "m.conv"),
        ],
        reference,
        x,
    )


def test_hard_regional_attention_initialises_to_fixed_stripes():
    output = run_layer_test(
        HardRegionalAttention,
        {"num_regions": 4},
        to_nhwc(features()),
        (3, 4, 2),
        expected_trainable_weights=2,
        expected_trainable_params=32 * 8 + 8,
    )
    # Zero kernel: the same translations for every image; t_x = 0 and t_y = tanh(-0.75, -0.25, 0.25, 0.75).
    expected = np.stack([np.zeros(4), np.tanh([-0.75, -0.25, 0.25, 0.75])], axis=-1)
    np.testing.assert_allclose(np.asarray(output), np.broadcast_to(expected, (3, 4, 2)), atol=1e-7)
    np.testing.assert_allclose(np.tanh(stripe_centres(4)), [-0.6351, -0.2449, 0.2449, 0.6351], atol=1e-4)


def test_hard_regional_attention_matches_torchreid(torchreid_hacnn):
    reference = torchreid_hacnn.HardAttn(32)
    randomize_torch_module(reference, seed=6)
    reference.fc.weight.data.normal_(0.0, 0.5)
    x = features()
    layer = HardRegionalAttention(4)
    layer.build((None, 10, 4, 32))
    assert_matches_reference(layer, dense_variables(layer.fc, "m.fc"), reference, x, atol=1e-6)


def test_harmonious_attention_matches_torchreid(torchreid_hacnn):
    reference = torchreid_hacnn.HarmAttn(32)
    randomize_torch_module(reference, seed=7)
    reference.eval()
    x = features()
    soft, theta = run_layer_test(
        HarmoniousAttention,
        {"num_regions": 4},
        to_nhwc(x),
        ((3, 10, 4, 32), (3, 4, 2)),
        expected_trainable_weights=22,
        expected_trainable_params=16 + 230 + 1120 + 264,
    )
    layer = HarmoniousAttention()
    layer.build((None, 10, 4, 32))
    assign_torchreid_tensors(
        harmonious_attention_variables(layer, "m"),
        {f"m.{k}": v.numpy() for k, v in reference.state_dict().items()},
        "HarmoniousAttention",
    )
    with torch.no_grad():
        expected_soft, expected_theta = reference(x)
    soft, theta = layer(to_nhwc(x))
    np.testing.assert_allclose(np.asarray(soft), to_nhwc(expected_soft), atol=1e-5)
    np.testing.assert_allclose(np.asarray(theta), expected_theta.numpy(), atol=1e-6)
