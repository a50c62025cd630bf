"""The one definition of "normalise an image" used by the model, the data pipeline and the exports."""

from __future__ import annotations

import keras
from keras import ops

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_images(images, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Maps RGB pixels in `[0, 255]` (any real or integer dtype) to torchreid's input: `(x / 255 - mean) / std`."""
    images = ops.cast(images, "float32")
    scale = ops.convert_to_tensor([1.0 / (255.0 * s) for s in std], "float32")
    offset = ops.convert_to_tensor([-m / s for m, s in zip(mean, std)], "float32")
    return images * scale + offset


def model_inputs(model, pixels):
    """What `model` takes for RGB `pixels` in `[0, 255]`: the pixels themselves when it normalises its input
    (`include_preprocessing`), else `normalize_images(pixels)`."""
    return pixels if getattr(model, "include_preprocessing", False) else normalize_images(pixels)


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
