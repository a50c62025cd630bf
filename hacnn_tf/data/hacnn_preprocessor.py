"""`HACNNPreprocessor`: encoded images to what HA-CNN takes (decode, resize, normalise), and `resize_pixels`, the one
resize of the project.

torchreid reads an image with PIL, resizes it bilinearly to the model's input size and normalises it with the ImageNet
statistics. Here the same three steps are TF ops, defined once and used by training and evaluation
(`hacnn_tf.data.pipeline`), the exported SavedModel's signatures, the tracker's box crops
(`hacnn_tf.tracking.crops`) and the Keras task (`HACNNReID.preprocessor`). It lives beside the data pipeline, below the
model in the import graph, because the pipeline uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from hacnn_tf.data.image_decoding import decode_rgb
from hacnn_tf.data.normalization import IMAGENET_MEAN, IMAGENET_STD, normalize_images


def resize_pixels(images, size: Sequence[int]):
    """RGB pixels `(H0, W0, 3)` or `(N, H0, W0, 3)` of any real or integer dtype -> float32 at `size` `(H, W)`.

    Bilinear with antialiasing (a downscale averages over the source pixels it covers, as PIL's bilinear resize that
    torchreid reads images with does); values stay in the input's range, 0..255 for decoded images.
    """
    return tf.image.resize(tf.cast(images, tf.float32), tuple(int(n) for n in size), method="bilinear", antialias=True)


@keras.saving.register_keras_serializable(package="hacnn_tf")
class HACNNPreprocessor(keras.layers.Layer):
    """Encoded images -> HA-CNN's input: decode, resize to `image_size`, ImageNet-normalise.

    The steps are methods, so that each consumer takes the ones it needs: the data pipeline decodes and resizes,
    augments, then normalises; the exported `embed_images` signature normalises pixels it is given; `serving_default`
    decodes and resizes encoded bytes (calling the layer) before normalising.

    Args:
        image_size: `(height, width)` the images are resized to, the model's input size.
        max_pixels: refuse an encoded image whose header declares more pixels, before decoding it (`decode_rgb`);
            `None`: no limit (the training data). The exported signatures use `DEFAULT_MAX_PIXELS`.
        mean, std: the per-channel statistics of `normalize` (torchreid's ImageNet ones).

    Call:
        `preprocessor(image_bytes)`: `[N]` string tensor of encoded JPEG/PNG/BMP/GIF/WebP images of any sizes ->
        `(N, H, W, 3)` float32 RGB pixels in `[0, 255]` at `image_size` (not normalised: what every `Embedder` and
        the exported `embed_images` take).

    Example:
        >>> preprocessor = HACNNPreprocessor((160, 64))
        >>> pixels = preprocessor(tf.constant([tf.io.encode_png(tf.zeros((300, 120, 3), tf.uint8)).numpy()]))
        >>> pixels.shape, preprocessor.normalize(pixels).shape
        (TensorShape([1, 160, 64, 3]), TensorShape([1, 160, 64, 3]))
    """

    def __init__(
        self,
        image_size: Sequence[int],
        max_pixels: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        kwargs.setdefault("trainable", False)
        super().__init__(autocast=False, **kwargs)
        # Encoded bytes are strings, which Keras must not try to cast or build on.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.image_size = tuple(int(n) for n in image_size)
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"image_size must be (height, width) of positive sizes; got {image_size!r}")
        if max_pixels is not None and (
            isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1
        ):
            raise ValueError(f"max_pixels must be a positive integer or None; got {max_pixels!r}")
        self.max_pixels = max_pixels
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.built = True

    def decode(self, image_bytes):
        """One encoded image (a string scalar) -> `(H0, W0, 3)` uint8 RGB (`decode_rgb` with `max_pixels`)."""
        return decode_rgb(image_bytes, self.max_pixels)

    def resize(self, images):
        """Pixels `(H0, W0, 3)` or `(N, H0, W0, 3)` -> float32 at `image_size` (`resize_pixels`)."""
        return resize_pixels(images, self.image_size)

    def decode_and_resize(self, image_bytes):
        """One encoded image -> `(H, W, 3)` float32 pixels in `[0, 255]` at `image_size`."""
        return self.resize(self.decode(image_bytes))

    def normalize(self, pixels):
        """RGB pixels in `[0, 255]` (any real or integer dtype) -> float32 `(x / 255 - mean) / std`."""
        return normalize_images(pixels, self.mean, self.std)

    def call(self, image_bytes):
        height, width = self.image_size
        return tf.map_fn(
            self.decode_and_resize,
            tf.convert_to_tensor(image_bytes, tf.string),
            fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32),
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.image_size, 3)

    def get_config(self):
        config = super().get_config()
        config.update(image_size=self.image_size, max_pixels=self.max_pixels, mean=self.mean, std=self.std)
        return config
