"""The `Embedder` protocol: whatever runs HA-CNN (a Keras model, a SavedModel, a TFLite, ONNX or OpenVINO file)
takes RGB pixels and returns L2-normalised embeddings, so that evaluation, parity reports, figures and benchmarks
run on any of them."""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """`embedder(pixels) -> (N, D)` float32 embeddings, each branch L2-normalised as the model's inference output.

    `pixels`: `(N, H, W, 3)` RGB (not BGR) values in 0..255 (float32 or uint8) at `input_size = (H, W)`, decoded and
    resized as `hacnn_tf.data.pipeline.decode_and_resize` does, not normalised.
    """

    input_size: tuple[int, int]

    def __call__(self, pixels: np.ndarray) -> np.ndarray: ...


def check_pixels(pixels: np.ndarray, input_size: tuple[int, int], source: str) -> np.ndarray:
    """`pixels` as float32 `(N, H, W, 3)`, or a `ValueError` naming `source` and the shape it got."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[1:] != (*input_size, 3):
        raise ValueError(f"{source} takes pixels of shape (N, {input_size[0]}, {input_size[1]}, 3); got "
                         f"{pixels.shape}")
    return pixels.astype(np.float32, copy=False)


def embed_in_batches(run: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray, batch_size: int,
                     feature_dim: int) -> np.ndarray:
    """`run` over `pixels` in chunks of at most `batch_size`, concatenated; `(0, feature_dim)` for no pixels."""
    if len(pixels) == 0:
        return np.zeros((0, feature_dim), np.float32)
    return np.concatenate([np.asarray(run(pixels[i:i + batch_size]), np.float32)
                           for i in range(0, len(pixels), batch_size)])
