"""`Embedder` of an exported SavedModel (its `embed_images` signature), with TensorFlow alone."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import tensorflow as tf

from hacnn_tf.runtime.base import Embedder, check_pixels, embed_in_batches
from hacnn_tf.serving.signatures import IMAGES_INPUT, IMAGES_SIGNATURE, OUTPUT


class SavedModelEmbedder(Embedder):
    """Runs the `embed_images` signature of the SavedModel at `path` (a version folder of `export_saved_model`)."""

    def __init__(self, path: str | os.PathLike, batch_size: int = 64):
        self.path = pathlib.Path(path)
        loaded = tf.saved_model.load(str(self.path))
        if IMAGES_SIGNATURE not in loaded.signatures:
            raise ValueError(
                f"{self.path}: no {IMAGES_SIGNATURE!r} signature (signatures: {sorted(loaded.signatures)});"
                " export it with hacnn_tf.export.export_saved_model"
            )
        self._loaded = loaded
        self._signature = loaded.signatures[IMAGES_SIGNATURE]
        spec = self._signature.structured_input_signature[1][IMAGES_INPUT]
        self.input_size = tuple(int(n) for n in spec.shape[1:3])
        self.feature_dim = int(self._signature.structured_outputs[OUTPUT].shape[-1])
        self.batch_size = int(batch_size)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        pixels = check_pixels(pixels, self.input_size, f"SavedModel {self.path}")
        return embed_in_batches(
            lambda chunk: self._signature(**{IMAGES_INPUT: tf.constant(chunk)})[OUTPUT].numpy(),
            pixels,
            self.batch_size,
            self.feature_dim,
        )
