"""Input normalisation inside the model (`ImageNormalization`) and `model_inputs`, which feeds pixels to a model
whether or not it normalises itself (the normalisation itself: `hacnn_tf.data.normalization`)."""

from __future__ import annotations

import keras
from keras import ops

from hacnn_tf.data.normalization import IMAGENET_MEAN, IMAGENET_STD, normalize_images


def model_inputs(model, pixels):
    """What `model` takes for RGB `pixels` in `[0, 255]`: the pixels themselves when it normalises its input
    (its `include_preprocessing`, which `hacnn_tf.models.HACNNReID` declares), else `normalize_images(pixels)`."""
    return pixels if model.include_preprocessing else normalize_images(pixels)


@keras.saving.register_keras_serializable(package="hacnn_tf")
class ImageNormalization(keras.layers.Layer):
    """`normalize_images` as a layer: `(N, H, W, 3)` pixels in `[0, 255]` -> ImageNet-normalised float32."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, **kwargs):
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def call(self, inputs):
        return ops.cast(normalize_images(inputs, self.mean, self.std), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(mean=self.mean, std=self.std)
        return config
