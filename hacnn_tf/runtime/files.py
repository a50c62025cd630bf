"""`embed_files`: embeddings of image files, encoded bytes or pixel arrays of any size with any `Embedder`.

Encoded images (a path's bytes, or `bytes`) are decoded and resized by `HACNNPreprocessor` with the pixel limit of
the exported signatures (`DEFAULT_MAX_PIXELS`), the layer the SavedModel's `serving_default` calls on its
`image_bytes`: the same file gives the same pixels here and through TF Serving. Pixel arrays are resized with the
same `resize_pixels`. The pixels then go to the embedder, `batch_size` images at a time.
"""

from __future__ import annotations

import functools
import os
import pathlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from hacnn_tf.data.hacnn_preprocessor import HACNNPreprocessor
from hacnn_tf.data.image_decoding import DEFAULT_MAX_PIXELS
from hacnn_tf.data.pipeline import op_error_text
from hacnn_tf.errors import DataError, InputFileError
from hacnn_tf.progress import Progress

if TYPE_CHECKING:
    from hacnn_tf.runtime.base import Embedder

# One image: a path of an image file, its encoded bytes, or `(H, W, 3)` RGB pixels 0..255 (uint8 or float).
ImageSource = str | os.PathLike | bytes | np.ndarray
READABLE = "JPEG, PNG, BMP, GIF or WebP"


def _name(item: ImageSource, index: int) -> str:
    return os.fspath(item) if isinstance(item, (str, os.PathLike)) else f"image {index}"


def _encoded(item: ImageSource, index: int) -> bytes | None:
    """The encoded bytes of a path or `bytes` item (None for a pixel array); an `InputFileError` naming a file that
    cannot be read."""
    if isinstance(item, bytes):
        return item
    if not isinstance(item, (str, os.PathLike)):
        return None
    path = pathlib.Path(item)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: a folder, not an image file") from None
    except OSError as error:
        raise InputFileError(
            f"{path}: cannot be read ({error.strerror}); fix its permissions or leave it out"
        ) from None


def _pixels(item: ImageSource, index: int) -> np.ndarray:
    """A pixel-array item as float32 `(H, W, 3)`, or a `ValueError` naming it."""
    pixels = np.asarray(item)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise ValueError(f"image {index}: pixels must be (height, width, 3) RGB; got shape {pixels.shape}")
    if not (pixels.dtype == np.uint8 or np.issubdtype(pixels.dtype, np.floating)):
        raise ValueError(f"image {index}: pixels must be uint8 or float 0..255; got dtype {pixels.dtype}")
    return pixels.astype(np.float32, copy=False)


class _Decoder:
    """Encoded images and pixel arrays -> `(N, H, W, 3)` float32 at `input_size`, as `serving_default` does. Its
    functions are traced once per input size (`_decoder`), not on every `embed_files` call."""

    def __init__(self, input_size: tuple[int, int]):
        self.input_size = tuple(input_size)
        preprocessor = HACNNPreprocessor(self.input_size, max_pixels=DEFAULT_MAX_PIXELS)
        self._decode_batch = tf.function(
            preprocessor, input_signature=[tf.TensorSpec((None,), tf.string)], autograph=False
        )
        self._decode_one = tf.function(
            preprocessor.decode_and_resize, input_signature=[tf.TensorSpec((), tf.string)], autograph=False
        )
        self._resize = tf.function(
            preprocessor.resize, input_signature=[tf.TensorSpec((None, None, 3), tf.float32)], autograph=False
        )

    def __call__(self, items: Sequence[ImageSource], start: int) -> np.ndarray:
        """The pixels of `items` (the images `start`, `start + 1`, ... of the input) in order."""
        encoded = [_encoded(item, start + i) for i, item in enumerate(items)]
        pixels: list = [None] * len(items)
        coded = [i for i, data in enumerate(encoded) if data is not None]
        if coded:
            try:
                decoded = self._decode_batch(tf.constant([encoded[i] for i in coded])).numpy()
            except tf.errors.OpError:
                decoded = self._decode_each(
                    [items[i] for i in coded], [encoded[i] for i in coded], [start + i for i in coded]
                )
            for i, row in zip(coded, decoded):
                pixels[i] = row
        for i, item in enumerate(items):
            if pixels[i] is None:
                pixels[i] = self._resize(_pixels(item, start + i)).numpy()
        return np.stack(pixels) if pixels else np.zeros((0, *self.input_size, 3), np.float32)

    def _decode_each(self, items, encoded, indices) -> list[np.ndarray]:
        """Decodes one by one to name the image that failed the batch; a `DataError` naming it."""
        rows = []
        for item, data, index in zip(items, encoded, indices):
            try:
                rows.append(self._decode_one(tf.constant(data)).numpy())
            except tf.errors.OpError as error:
                reason = "an empty file" if not data else op_error_text(error)
                raise DataError(
                    f"{_name(item, index)}: not a readable image ({reason}); give {READABLE} images of "
                    f"at most {DEFAULT_MAX_PIXELS:,} pixels, or leave it out"
                ) from None
        return rows


@functools.lru_cache(maxsize=8)
def _decoder(input_size: tuple[int, int]) -> _Decoder:
    return _Decoder(input_size)


def pixel_batches(
    images: Sequence[ImageSource] | np.ndarray, input_size: tuple[int, int], batch_size: int
) -> Iterator[np.ndarray]:
    """`(n, H, W, 3)` float32 pixels 0..255 at `input_size` of `images`, `batch_size` at a time, in order.

    `images`: paths of image files (JPEG, PNG, BMP, GIF, WebP), encoded `bytes`, `(H0, W0, 3)` pixel arrays of any
    size (uint8 or float 0..255, RGB), mixed as needed, or an `(N, H0, W0, 3)` array. A file that is missing or does
    not decode raises `InputFileError` / `DataError` naming it; a wrong array a `ValueError`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if isinstance(images, np.ndarray) and images.ndim != 4:
        raise ValueError(
            f"an array of images must be (N, height, width, 3); got shape {images.shape} (give one "
            "image as a list of one array)"
        )
    if isinstance(images, (str, os.PathLike, bytes)):
        raise TypeError(
            "images must be a sequence of paths, encoded images or arrays; got a single "
            f"{type(images).__name__} (wrap it in a list)"
        )
    decode = _decoder(tuple(int(n) for n in input_size))
    for start in range(0, len(images), batch_size):
        yield decode(list(images[start : start + batch_size]), start)


def embed_files(
    embedder: Embedder,
    images: Sequence[ImageSource] | np.ndarray,
    batch_size: int = 64,
    progress: bool | None = None,
    flip: bool = False,
) -> np.ndarray:
    """`(len(images), D)` float32 embeddings by `embedder` of `images` (what `pixel_batches` takes), in order.

    With `flip`, a row is the mean of the embeddings of the image and of its mirror image (test-time augmentation).
    The count of images embedded is shown as `hacnn_tf.progress.Progress` does (`progress` is its `enabled`)."""
    chunks = []
    with Progress(f"embedding {len(images):,} images", total=len(images), unit="images", enabled=progress) as shown:
        for pixels in pixel_batches(images, tuple(embedder.input_size), batch_size):
            features = np.asarray(embedder(pixels), np.float32)
            if flip:
                mirrored = np.ascontiguousarray(pixels[:, :, ::-1])
                features = 0.5 * (features + np.asarray(embedder(mirrored), np.float32))
            chunks.append(features)
            shown.advance(len(pixels))
    if not chunks:  # the embedder's empty call gives its feature size
        return np.asarray(embedder(np.zeros((0, *embedder.input_size, 3), np.float32)), np.float32)
    return np.concatenate(chunks)
