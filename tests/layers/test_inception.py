import pytest
import torch
from conftest import assert_matches_reference, randomize_torch_module, run_layer_test, to_nhwc

from hacnn_tf.convert.torchreid import inception_a_variables, inception_b_variables
from hacnn_tf.layers import InceptionA, InceptionB


def conv_params(cin, cout, k):
    return k * k * cin * cout + cout + 2 * cout


@pytest.mark.parametrize("size", [(40, 16), (7, 6)])
def test_inception_a_matches_torchreid(torchreid_hacnn, size):
    reference = torchreid_hacnn.InceptionA(12, 16)
    randomize_torch_module(reference, seed=1)
    reference.eval()
    # Negative inputs too: the average pool's zero padding must count in the mean (count_include_pad=True).
    x = torch.randn(3, 12, *size, generator=torch.Generator().manual_seed(1))
    run_layer_test(
        InceptionA,
        dict(filters=16),
        to_nhwc(x),
        expected_output_shape=(3, *size, 16),
        expected_trainable_weights=7 * 4,
        expected_trainable_params=3 * (conv_params(12, 4, 1) + conv_params(4, 4, 3)) + conv_params(12, 4, 1),
    )
    layer = InceptionA(16)
    layer.build((None, *size, 12))
    assert_matches_reference(layer, inception_a_variables(layer, "m"), reference, x)


@pytest.mark.parametrize("size,expected_size", [((80, 32), (40, 16)), ((6, 7), (3, 4)), ((24, 28), (12, 14))])
def test_inception_b_matches_torchreid(torchreid_hacnn, size, expected_size):
    reference = torchreid_hacnn.InceptionB(8, 16)
    randomize_torch_module(reference, seed=2)
    reference.eval()
    # Signed inputs: PyTorch pads the max pool with -inf, so a zero pad would be wrong here.
    x = torch.randn(2, 8, *size, generator=torch.Generator().manual_seed(2)) - 1.0
    run_layer_test(
        InceptionB,
        dict(filters=16),
        to_nhwc(x),
        expected_output_shape=(2, *expected_size, 16),
        expected_trainable_weights=6 * 4,
        expected_trainable_params=conv_params(8, 4, 1)
        + conv_params(4, 4, 3)
        + conv_params(8, 4, 1)
        + 2 * conv_params(4, 4, 3)
        + conv_params(8, 8, 1),
    )
    layer = InceptionB(16)
    layer.build((None, *size, 8))
    assert_matches_reference(layer, inception_b_variables(layer, "m"), reference, x)
    # The zero-padded pool of `nonnegative_inputs` is exact for inputs >= 0 (HA-CNN's), and only for those.
    fast = InceptionB(16, nonnegative_inputs=True)
    fast.build((None, *size, 8))
    assert_matches_reference(fast, inception_b_variables(fast, "m"), reference, torch.relu(x + 1.0))
    with pytest.raises(AssertionError):
        assert_matches_reference(fast, inception_b_variables(fast, "m"), reference, x)


def test_inception_rejects_filters_not_divisible_by_four():
    with pytest.raises(ValueError, match="multiple of 4; got 10"):
        InceptionB(10)
