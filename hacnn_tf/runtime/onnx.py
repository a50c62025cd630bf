"""`Embedder` of an ONNX file (from `hacnn_tf.export.convert_onnx`) with ONNX Runtime."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np

from hacnn_tf.runtime.base import Embedder, check_pixels, embed_in_batches


class ONNXEmbedder(Embedder):
    """Runs an ONNX embedding model (`images` `(batch, H, W, 3)` pixels 0..255 -> `(batch, D)`) in an ONNX Runtime
    session, `batch_size` images per call; `input_size` and the feature size come from the file's declared shapes.

    `num_threads` sets the session's intra-op threads (default: ONNX Runtime's, one per physical core); `providers`
    its execution providers (default: the CPU). A session's `run` may be called from several threads at once.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        num_threads: int | None = None,
        batch_size: int = 64,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ):
        import onnxruntime as ort

        self.path = pathlib.Path(path)
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), options, providers=list(providers))
        (self._input,), (output,) = self.session.get_inputs(), self.session.get_outputs()
        shape = self._input.shape
        if len(shape) != 4 or shape[3] != 3 or not all(isinstance(n, int) for n in shape[1:]):
            raise ValueError(
                f"{self.path}: input {self._input.name!r} has shape {shape}; expected (batch, H, W, 3) "
                "with H and W fixed"
            )
        self.input_size = (shape[1], shape[2])
        self.feature_dim = int(output.shape[-1])
        self._output = output.name
        self.batch_size = int(batch_size)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        pixels = check_pixels(pixels, self.input_size, f"ONNX model {self.path}")
        return embed_in_batches(
            lambda chunk: self.session.run([self._output], {self._input.name: chunk})[0],
            pixels,
            self.batch_size,
            self.feature_dim,
        )
