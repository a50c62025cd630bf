"""`Embedder` of a Keras HA-CNN (a model object, a `.keras` file or a torchreid checkpoint)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from hacnn_tf.layers.preprocessing import model_inputs
from hacnn_tf.runtime.base import Embedder, check_pixels, embed_in_batches


class KerasEmbedder(Embedder):
    """Runs `model(model_inputs(model, pixels), training=False)["embedding"]` in a traced `tf.function`, `batch_size`
    images at a
    time. Normalisation is the model's own when it was built with `include_preprocessing`, else added here."""

    def __init__(self, model: keras.Model, batch_size: int = 64):
        self.model = model
        self.input_size = tuple(model.input_size)
        self.batch_size = int(batch_size)
        height, width = self.input_size
        self._embed = tf.function(
            lambda pixels: model(model_inputs(model, pixels), training=False)["embedding"],
            input_signature=[tf.TensorSpec((None, height, width, 3), tf.float32)],
            autograph=False,
        )
        self.feature_dim = int(self._embed.get_concrete_function().structured_outputs.shape[-1])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        pixels = check_pixels(pixels, self.input_size, "KerasEmbedder")
        return embed_in_batches(
            lambda chunk: keras.ops.convert_to_numpy(self._embed(chunk)), pixels, self.batch_size, self.feature_dim
        )
