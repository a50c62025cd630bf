import pickle
import subprocess
import sys

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hacnn_tf
from hacnn_tf.cli.convert import main
from hacnn_tf.convert.torchreid import load_torchreid_state_dict


def nchw(images_nhwc):
    return torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))


def batches(seed, sizes=(1, 3, 8)):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, 160, 64, 3)).astype("float32") for n in sizes]


@pytest.fixture(scope="module")
def reference(torchreid_model_factory):
    return torchreid_model_factory(num_classes=751, seed=11)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, reference):
    path = tmp_path_factory.mktemp("ckpt") / "model.pth.tar"
    # torchreid's own checkpoint layout, saved from DataParallel ("module." prefixes).
    torch.save(
        {
            "state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()},
            "epoch": 60,
            "rank1": 0.9,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.03}]},
        },
        path,
    )
    return path


def test_imported_model_equals_torchreid_eval_output(reference, checkpoint):
    model = hacnn_tf.from_torchreid(checkpoint, align_corners=False)
    # The randomised hard attention depends on the image: the regions move between images (0.005 is 0.2 pixel
    # at level 1) and tanh is not saturated.
    features = model.stem(batches(0)[2], training=False)
    for block in model.global_blocks[0]:
        features = block(features, training=False)
    theta = np.asarray(model.attentions[0].hard_attention(features))
    assert theta.std(axis=0).max() > 0.005 and np.abs(theta).max() < 0.95
    worst = 0.0
    for images in batches(seed=1):
        with torch.no_grad():
            expected = reference(nchw(images)).numpy()
        actual = np.asarray(model(images)["embedding"])
        worst = max(worst, float(np.abs(actual - expected).max()))
    assert worst <= 1e-4, worst


@pytest.fixture(scope="module")
def reference_align_corners(torchreid_hacnn, torchreid_model_factory):
    """torchreid's model as it ran on PyTorch <= 1.2, whose affine_grid/grid_sample used align_corners=True."""

    class HACNNAlignCorners(torchreid_hacnn.HACNN):
        def stn(self, x, theta):
            grid = F.affine_grid(theta, x.size(), align_corners=True)
            return F.grid_sample(x, grid, align_corners=True)

    model = HACNNAlignCorners(751, use_gpu=False)
    model.load_state_dict(torchreid_model_factory(num_classes=751, seed=12).state_dict())
    return model.eval()


def test_align_corners_checkpoint_parity(tmp_path, reference_align_corners):
    path = tmp_path / "zoo.pth"
    torch.save(reference_align_corners.state_dict(), path)  # bare state dict
    model = hacnn_tf.from_torchreid(path, align_corners=True)
    mismatched = hacnn_tf.from_torchreid(path, align_corners=False)
    for images in batches(seed=2, sizes=(2, 5)):
        with torch.no_grad():
            expected = reference_align_corners(nchw(images)).numpy()
        assert np.abs(np.asarray(model(images)["embedding"]) - expected).max() <= 1e-4
        # The flag matters: the other convention is measurably off.
        assert np.abs(np.asarray(mismatched(images)["embedding"]) - expected).max() > 1e-3


def test_training_mode_outputs_equal_torchreid_train_mode(torchreid_hacnn, torchreid_model_factory, tmp_path):
    # Batch statistics everywhere, and the shared local Inception-Bs normalise each region on its own.
    reference = torchreid_model_factory(num_classes=20, seed=13, loss="triplet")
    path = tmp_path / "model.pt"
    torch.save(reference.state_dict(), path)
    model = hacnn_tf.from_torchreid(path)
    images = batches(seed=3, sizes=(12,))[0]
    reference.train()
    with torch.no_grad():
        (logits_g, logits_l), (features_g, features_l) = reference(nchw(images))
    outputs = model(images, training=True)
    for name, expected in (
        ("global_logits", logits_g),
        ("local_logits", logits_l),
        ("global_features", features_g),
        ("local_features", features_l),
    ):
        np.testing.assert_allclose(np.asarray(outputs[name]), expected.numpy(), atol=2e-3, rtol=1e-3, err_msg=name)


def test_checkpoint_formats_and_inferred_config(tmp_path, torchreid_hacnn):
    reference = torchreid_hacnn.HACNN(7, use_gpu=False, nchannels=[64, 128, 192], feat_dim=256)
    state = reference.state_dict()
    arrays = {}
    for name, payload in (
        ("bare.pth", state),
        ("wrapped.pth.tar", {"state_dict": state}),
        ("prefixed.pt", {f"module.{k}": v for k, v in state.items()}),
    ):
        torch.save(payload, tmp_path / name)
        arrays[name] = load_torchreid_state_dict(tmp_path / name)
    assert arrays["bare.pth"].keys() == arrays["prefixed.pt"].keys() == arrays["wrapped.pth.tar"].keys()
    assert not any(k.endswith("num_batches_tracked") for k in arrays["bare.pth"])
    model = hacnn_tf.from_torchreid(tmp_path / "prefixed.pt")
    assert (model.num_classes, model.nchannels, model.feat_dim) == (7, (64, 128, 192), 256)
    with pytest.raises(ValueError, match="num_classes=751 was asked for, but the checkpoint's classifiers have 7"):
        hacnn_tf.from_torchreid(tmp_path / "bare.pth", num_classes=751)


def test_mismatched_checkpoints_list_every_problem(tmp_path, reference):
    state = dict(reference.state_dict())
    del state["ha2.hard_attn.fc.bias"]
    state["local_conv1.stream1.0.conv.weight"] = torch.zeros(33, 32, 1, 1)
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError) as error:
        hacnn_tf.from_torchreid(tmp_path / "broken.pth")
    message = str(error.value)
    assert "missing (1):\n  ha2.hard_attn.fc.bias" in message
    assert "unexpected (1):\n  extra.weight" in message
    assert "local_conv1.stream1.0.conv.weight: checkpoint (33, 32, 1, 1)" in message and "(1, 1, 32, 32)" in message


class Payload:
    """An arbitrary Python object: `weights_only=True` must refuse to unpickle it."""


def test_refuses_pickled_objects_and_missing_files(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": Payload()}, handle)
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint of tensors"):
        load_torchreid_state_dict(path)
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        load_torchreid_state_dict(tmp_path / "nothere.pth")


def test_command_converts_to_a_keras_file(tmp_path, checkpoint, reference, capsys):
    output = tmp_path / "out" / "hacnn.keras"
    main([str(checkpoint), str(output)])
    assert "wrote" in capsys.readouterr().out
    assert sorted(p.name for p in output.parent.iterdir()) == ["hacnn.keras"]  # no temporary file left behind
    model = keras.saving.load_model(output)
    images = batches(seed=4, sizes=(2,))[0]
    with torch.no_grad():
        expected = reference(nchw(images)).numpy()
    assert np.abs(np.asarray(model(images)["embedding"]) - expected).max() <= 1e-4
    # `hacnn-tf convert` and the earlier `hacnn-convert-torchreid` name are the same entry point.
    result = subprocess.run(
        [sys.executable, "-m", "hacnn_tf.cli", "convert", "--help"], capture_output=True, text=True, check=True
    )
    assert "--align-corners" in result.stdout
