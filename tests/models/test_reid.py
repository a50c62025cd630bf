"""`HACNNReID`: the backbone plus the identity classifiers, and `HACNN`, the task built from its settings."""

import keras
import numpy as np
import pytest

from hacnn_tf.model import HACNN
from hacnn_tf.models import HACNNBackbone, HACNNReID

SMALL = {"nchannels": (8, 8, 8), "feat_dim": 8, "input_size": (64, 32), "reduction": 4}


def images(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(3, 64, 32, 3)).astype("float32")


def test_logits_are_the_classifiers_on_the_backbone_features():
    task = HACNNReID(HACNNBackbone(**SMALL), num_classes=5)
    outputs = task(images())
    assert sorted(outputs) == ["embedding", "global_features", "global_logits", "local_features", "local_logits"]
    for branch in ("global", "local"):
        classifier = getattr(task, f"{branch}_classifier")
        kernel, bias = (np.asarray(w) for w in classifier.weights)
        expected = np.asarray(outputs[f"{branch}_features"]) @ kernel + bias
        np.testing.assert_allclose(np.asarray(outputs[f"{branch}_logits"]), expected, atol=1e-5)


def test_without_classes_or_local_branch_the_outputs_are_fewer():
    assert sorted(HACNNReID(HACNNBackbone(**SMALL), num_classes=None)(images())) == [
        "embedding",
        "global_features",
        "local_features",
    ]
    global_only = HACNNReID(HACNNBackbone(**SMALL, learn_region=False), num_classes=5)
    assert sorted(global_only(images())) == ["embedding", "global_features", "global_logits"]
    assert global_only.local_classifier is None
    with pytest.raises(ValueError, match="num_classes"):
        HACNNReID(HACNNBackbone(**SMALL), num_classes=0)


def test_the_task_answers_for_its_backbone_layers_and_settings():
    task = HACNN(5, **SMALL, include_preprocessing=True)
    backbone = task.backbone
    assert (
        task.stem is backbone.stem and task.global_bn is backbone.global_bn and task.attentions is backbone.attentions
    )
    assert task.local_blocks == backbone.local_blocks and task.preprocessing is backbone.preprocessing
    assert task.include_preprocessing is True and task.input_size == (64, 32) and task.embedding_dim == 16
    assert task.float32_heads == [backbone.global_bn, backbone.local_bn]
    with pytest.raises(AttributeError):
        task.no_such_layer  # noqa: B018


@pytest.mark.parametrize("make", [lambda: HACNNReID(HACNNBackbone(**SMALL), 5), lambda: HACNN(5, **SMALL)])
def test_keras_file_round_trip(tmp_path, make):
    """A file of the new layout (`backbone/...`) reloads to the same class and the same outputs, bit for bit."""
    model = make()
    model.save(tmp_path / "model.keras")
    revived = keras.saving.load_model(tmp_path / "model.keras")
    assert type(revived) is type(model)
    ours, theirs = model(images(1)), revived(images(1))
    for key in ours:
        np.testing.assert_array_equal(np.asarray(theirs[key]), np.asarray(ours[key]), err_msg=key)
    translations = zip(model.attention(images(1))["translations"], revived.attention(images(1))["translations"])
    for a, b in translations:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_hacnn_keeps_its_registered_name_and_flat_config():
    model = HACNN(5, **SMALL)
    assert keras.saving.get_registered_name(HACNN) == "hacnn_tf>HACNN"
    config = model.get_config()
    assert "backbone" not in config and config["num_classes"] == 5 and config["head_dtype"] is None
    assert HACNN.from_config(config).count_params() == model.count_params()
