import numpy as np
import pytest
import torch
from conftest import load_torchreid_module

from hacnn_tf.losses import BatchHardTripletLoss, LabelSmoothingCrossEntropy, hacnn_losses


@pytest.fixture(scope="module")
def torchreid_losses():
    return (
        load_torchreid_module("reid/losses/cross_entropy_loss.py"),
        load_torchreid_module("reid/losses/hard_mine_triplet_loss.py"),
    )


def test_label_smoothing_cross_entropy_equals_torchreid(torchreid_losses):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 11)).astype("float32") * 3
    labels = rng.integers(0, 11, size=16)
    reference = torchreid_losses[0].CrossEntropyLoss(11, use_gpu=False, label_smooth=True)
    expected = float(reference(torch.from_numpy(logits), torch.from_numpy(labels)))
    assert float(LabelSmoothingCrossEntropy(0.1)(labels, logits)) == pytest.approx(expected, rel=1e-6)
    # epsilon 0 is plain cross-entropy: -log softmax at the label.
    plain = -np.log(np.exp(logits[np.arange(16), labels]) / np.exp(logits).sum(-1)).mean()
    assert float(LabelSmoothingCrossEntropy(0.0)(labels, logits)) == pytest.approx(plain, rel=1e-5)


def test_batch_hard_triplet_equals_torchreid(torchreid_losses):
    rng = np.random.default_rng(1)
    features = rng.normal(size=(16, 32)).astype("float32")
    labels = np.repeat(np.arange(4), 4)
    reference = torchreid_losses[1].TripletLoss(margin=0.3)
    expected = float(reference(torch.from_numpy(features), torch.from_numpy(labels)))
    assert float(BatchHardTripletLoss(0.3)(labels, features)) == pytest.approx(expected, rel=1e-5)


def test_batch_hard_triplet_analytic():
    # Two identities on a line: anchors at 0 and 1 (id 0), 3 and 10 (id 1).
    features = np.array([[0.0], [1.0], [3.0], [10.0]], "float32")
    labels = np.array([0, 0, 1, 1])
    # hardest positive / negative: a0: 1 / 3; a1: 1 / 2; a2: 7 / 2; a3: 7 / 9.
    expected = np.mean([max(0, 1 - 3 + 0.3), max(0, 1 - 2 + 0.3), max(0, 7 - 2 + 0.3), max(0, 7 - 9 + 0.3)])
    assert float(BatchHardTripletLoss(0.3)(labels, features)) == pytest.approx(expected, rel=1e-5)


def test_hacnn_losses_average_the_two_heads():
    losses, weights = hacnn_losses(triplet=True, weight_x=1.0, weight_t=2.0)
    assert weights == {"global_logits": 0.5, "local_logits": 0.5, "global_features": 1.0, "local_features": 1.0}
    assert isinstance(losses["local_features"], BatchHardTripletLoss)
    with pytest.raises(ValueError):
        hacnn_losses(softmax=False, triplet=False)
