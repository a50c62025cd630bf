"""The two contenders' models with the same weights, and the exported forms of this project's model."""

from __future__ import annotations

import pathlib

import numpy as np

from hacnn_tf.convert.reference import torchreid_hacnn
from hacnn_tf.convert.torchreid import load_torchreid_weights
from hacnn_tf.model import HACNN

NUM_CLASSES = 751  # Market-1501's training identities
INPUT_SIZE = (160, 64)
# Forward multiply-adds x 2 of HA-CNN at 160 x 64 (counted layer by layer; docs/performance.md#reproduce);
# a training step costs about 3 forwards.
FORWARD_GFLOP = 1.088
TRAIN_GFLOP = 3 * FORWARD_GFLOP


def reference_and_port(seed: int = 0):
    """torchreid's HACNN with random weights and batch-norm statistics (eval mode), and this project's HACNN with
    the same weights imported, so both compute the same function."""
    reference = torchreid_hacnn(NUM_CLASSES, seed=seed)
    model = HACNN(NUM_CLASSES)
    load_torchreid_weights(model, {key: value.numpy() for key, value in reference.state_dict().items()})
    return reference, model


def images(batch: int, seed: int = 0) -> np.ndarray:
    """`(batch, 160, 64, 3)` float32 ImageNet-normalised-looking inputs."""
    return np.random.default_rng(seed).normal(size=(batch, *INPUT_SIZE, 3)).astype(np.float32)


def pixels(batch: int, seed: int = 0) -> np.ndarray:
    """`(batch, 160, 64, 3)` float32 RGB pixels in 0..255 (the exported signatures' input)."""
    return np.random.default_rng(seed).uniform(0, 255, size=(batch, *INPUT_SIZE, 3)).astype(np.float32)


def exports(model: HACNN, workdir: pathlib.Path) -> tuple[pathlib.Path, dict[str, pathlib.Path]]:
    """The SavedModel and the fp32 and int8 TFLite files of `model`; int8 is calibrated on 100 images of the
    built-in synthetic data set (pedestrian-like renders, so activation ranges are realistic)."""
    from hacnn_tf.data import synthetic
    from hacnn_tf.data.datasets import load_dataset
    from hacnn_tf.data.pipeline import load_pixels
    from hacnn_tf.export.saved_model import export_saved_model
    from hacnn_tf.export.tflite import convert_tflite_variants

    saved_model = export_saved_model(model, workdir / "saved_model", check=False)
    dataset = load_dataset("market1501", synthetic.generate(workdir / "synthetic", seed=0))
    calibration = load_pixels(dataset.train.sample(100, random_state=0), INPUT_SIZE)
    tflite = convert_tflite_variants(
        saved_model, {variant: workdir / f"hacnn_{variant}.tflite" for variant in ("fp32", "int8")}, calibration
    )
    return saved_model, tflite
