"""Load an HA-CNN from whatever checkpoint a user has: this project's `.keras` file or a torchreid `.pth`."""

from __future__ import annotations

import os
import pathlib
import zipfile

import keras

from hacnn_tf.convert.torchreid import from_torchreid
from hacnn_tf.errors import CheckpointError, InputFileError, require_extras
from hacnn_tf.model import HACNN

TORCH_SUFFIXES = (".pth", ".pt", ".tar")


def load_checkpoint(path: str | os.PathLike, align_corners: bool = False) -> HACNN:
    """A `.keras` file written by this project, or a torchreid checkpoint (`.pth`, `.pth.tar`, `.pt`).

    Raises `InputFileError` (a FileNotFoundError) for a missing file, `CheckpointError` (a ValueError) naming the
    file for one of another kind, corrupt, or holding another model, and `MissingExtraError` for a torchreid
    checkpoint without PyTorch installed.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise InputFileError(f"Checkpoint not found: {path}" + (" (a folder)" if path.is_dir() else ""))
    if path.suffix == ".keras":
        if not zipfile.is_zipfile(path):  # Keras would say "File not found"
            raise CheckpointError(f"{path} is not a .keras file (a zip archive): truncated or corrupt")
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:  # Keras raises ValueError, KeyError, OSError, TypeError... for a broken file
            raise CheckpointError(
                f"{path}: Keras cannot load it ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''})"
            ) from error
        if not isinstance(model, HACNN):
            raise CheckpointError(f"{path} holds a {type(model).__name__}, not a hacnn_tf.HACNN")
        return model
    if path.suffix in TORCH_SUFFIXES:
        require_extras(f"reading the torchreid checkpoint {path}", "torch")
        try:
            return from_torchreid(path, align_corners=align_corners)
        except ValueError as error:
            raise CheckpointError(str(error)) from error
    raise CheckpointError(f"{path}: unknown checkpoint type (expected .keras, .pth, .pth.tar or .pt)")
