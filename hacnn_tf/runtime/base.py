"""The `Embedder` protocol: whatever runs HA-CNN (a Keras model, a SavedModel, a TFLite, ONNX or OpenVINO file)
takes RGB pixels and returns L2-normalised embeddings, so that evaluation, parity reports, figures and benchmarks
run on any of them; `embed_files` gives each of them image files and arrays of any size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from hacnn_tf.runtime.files import ImageSource


@runtime_checkable
class Embedder(Protocol):
    """`embedder(pixels) -> (N, D)` float32 embeddings, each branch L2-normalised as the model's inference output.

    `pixels`: `(N, H, W, 3)` RGB (not BGR) values in 0..255 (float32 or uint8) at `input_size = (H, W)`, decoded and
    resized as `hacnn_tf.HACNNPreprocessor` does, not normalised.

    The embedding of HA-CNN is its global and local branches' features, each L2-normalised and concatenated: a row
    has norm sqrt(2); divide by it (or by the row's norm) for unit-norm rows.

    The embedders of `hacnn_tf.runtime` subclass this protocol and so inherit `embed_files`; an embedder of your own
    gets it by subclassing `Embedder` too.
    """

    input_size: tuple[int, int]

    def __call__(self, pixels: np.ndarray) -> np.ndarray: ...

    def embed_files(
        self,
        images: Sequence[ImageSource] | np.ndarray,
        batch_size: int = 64,
        progress: bool | None = None,
        flip: bool = False,
    ) -> np.ndarray:
        """`(len(images), D)` float32 embeddings of image files, encoded bytes or `(H0, W0, 3)` pixel arrays of any
        size, decoded and resized as the exported SavedModel's `serving_default` does, `batch_size` images at a time
        (`hacnn_tf.runtime.files.embed_files`; `flip` averages each image's and its mirror's). An unreadable file
        raises `InputFileError` / `DataError` naming it."""
        from hacnn_tf.runtime.files import embed_files

        return embed_files(self, images, batch_size, progress, flip)


def check_pixels(pixels: np.ndarray, input_size: tuple[int, int], source: str) -> np.ndarray:
    """`pixels` as float32 `(N, H, W, 3)`, or a `ValueError` naming `source` and the shape it got."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[1:] != (*input_size, 3):
        raise ValueError(f"{source} takes pixels of shape (N, {input_size[0]}, {input_size[1]}, 3); got {pixels.shape}")
    return pixels.astype(np.float32, copy=False)


def embed_in_batches(
    run: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray, batch_size: int, feature_dim: int
) -> np.ndarray:
    """`run` over `pixels` in chunks of at most `batch_size`, concatenated; `(0, feature_dim)` for no pixels."""
    if len(pixels) == 0:
        return np.zeros((0, feature_dim), np.float32)
    return np.concatenate(
        [np.asarray(run(pixels[i : i + batch_size]), np.float32) for i in range(0, len(pixels), batch_size)]
    )
