"""The one definition of "normalise an image" used by the data pipeline, the model (`ImageNormalization`) and the
exports: torchreid's ImageNet statistics."""

from __future__ import annotations

from keras import ops

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_images(images, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Maps RGB pixels in `[0, 255]` (any real or integer dtype) to torchreid's input: `(x / 255 - mean) / std`."""
    images = ops.cast(images, "float32")
    scale = ops.convert_to_tensor([1.0 / (255.0 * s) for s in std], "float32")
    offset = ops.convert_to_tensor([-m / s for m, s in zip(mean, std)], "float32")
    return images * scale + offset
