"""`HACNNBackbone`: a functional model with the features, embedding and attention of HA-CNN."""

import json

import keras
import numpy as np
import pytest

from hacnn_tf.model import HACNN, l2_normalize
from hacnn_tf.models import HACNNBackbone

SMALL = {"nchannels": (8, 8, 8), "feat_dim": 8, "input_size": (64, 32), "reduction": 4}


def images(seed: int = 0, n: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 64, 32, 3)).astype("float32")


def test_the_backbone_is_a_functional_model_with_features_and_attention():
    backbone = HACNNBackbone(**SMALL)
    assert isinstance(backbone, keras.Model) and isinstance(backbone.layers[0], keras.layers.InputLayer)
    outputs = backbone(images())
    assert {k: tuple(v.shape) for k, v in outputs.items() if k not in ("soft_maps", "translations")} == {
        "embedding": (2, 16),
        "global_features": (2, 8),
        "local_features": (2, 8),
    }
    assert [tuple(m.shape) for m in outputs["soft_maps"]] == [(2, 16, 8, 8), (2, 8, 4, 8), (2, 4, 2, 8)]
    assert [tuple(t.shape) for t in outputs["translations"]] == [(2, 4, 2)] * 3
    # The embedding: each branch L2-normalised, then concatenated, global first.
    expected = np.concatenate(
        [np.asarray(l2_normalize(outputs["global_features"])), np.asarray(l2_normalize(outputs["local_features"]))],
        axis=-1,
    )
    np.testing.assert_allclose(np.asarray(outputs["embedding"]), expected, atol=1e-6)


def test_config_round_trip_gives_the_same_outputs():
    backbone = HACNNBackbone(**SMALL, learn_region=True, num_regions=2)
    config = backbone.get_config()
    clone = HACNNBackbone.from_config(json.loads(json.dumps(config)))
    assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    clone.set_weights(backbone.get_weights())
    for key in ("embedding", "global_features", "local_features"):
        np.testing.assert_array_equal(np.asarray(clone(images(1))[key]), np.asarray(backbone(images(1))[key]))


def test_the_hacnn_model_runs_its_backbone():
    """The task's features are its backbone's, bit for bit."""
    model = HACNN(5, **SMALL)
    ours, theirs = model(images(2)), model.backbone(images(2))
    for key in ("embedding", "global_features", "local_features"):
        np.testing.assert_array_equal(np.asarray(ours[key]), np.asarray(theirs[key]))


def test_global_only_backbone_has_no_local_stream():
    backbone = HACNNBackbone(**SMALL, learn_region=False)
    outputs = backbone(images())
    assert "local_features" not in outputs
    np.testing.assert_array_equal(np.asarray(outputs["embedding"]), np.asarray(outputs["global_features"]))
    assert backbone.samplers == [] and backbone.local_blocks == [] and backbone.float_island_layers == []


@pytest.mark.parametrize("head_dtype,expected", [(None, "float16"), ("float32", "float32")])
def test_head_dtype_sets_the_compute_dtype_of_the_branch_ends(head_dtype, expected):
    backbone = HACNNBackbone(**SMALL, head_dtype=head_dtype, dtype="mixed_float16")
    assert backbone.stem.compute_dtype == "float16"
    assert [head.compute_dtype for head in backbone.float32_heads] == [expected, expected]
    assert backbone.embedding_dim == 16
