"""Load an HA-CNN from whatever checkpoint a user has: this project's `.keras` file or a torchreid `.pth`."""

from __future__ import annotations

import os
import pathlib
import zipfile

import keras

from hacnn_tf.convert.torchreid import from_torchreid
from hacnn_tf.model import HACNN

TORCH_SUFFIXES = (".pth", ".pt", ".tar")


def load_checkpoint(path: str | os.PathLike, align_corners: bool = False) -> HACNN:
    """A `.keras` file written by this project, or a torchreid checkpoint (`.pth`, `.pth.tar`, `.pt`)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint not found: {path}")
    if path.suffix == ".keras":
        if not zipfile.is_zipfile(path):  # Keras would say "File not found"
            raise ValueError(f"{path} is not a .keras file (a zip archive): truncated or corrupt")
        model = keras.saving.load_model(path, compile=False)
        if not isinstance(model, HACNN):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a hacnn_tf.HACNN")
        return model
    if path.suffix in TORCH_SUFFIXES:
        return from_torchreid(path, align_corners=align_corners)
    raise ValueError(f"{path}: unknown checkpoint type (expected .keras, .pth, .pth.tar or .pt)")
