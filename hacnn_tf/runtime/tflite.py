"""`Embedder` of a `.tflite` file (from `hacnn_tf.export.convert_tflite`) run with LiteRT (`ai_edge_litert`)."""

from __future__ import annotations

import os
import pathlib
import threading

import numpy as np

from hacnn_tf._startup import quiet_native_output
from hacnn_tf.runtime.base import Embedder, check_pixels, embed_in_batches


class TFLiteEmbedder(Embedder):
    """Runs a `.tflite` embedding model with `ai_edge_litert` (XNNPACK): a dynamic-batch file (`shape_signature` -1,
    `convert_tflite(..., batch=None)`) `batch_size` images per invoke, a batch-1 file one image at a time.

    Call with `(N, H, W, 3)` RGB pixels in 0..255; returns `(N, D)` float32. A file with an integer input (the
    `"uint8"` variant: scale 1, zero point 0) gets the pixels quantised with its input's scale and zero point
    (rounded, clipped to the type's range); an integer output is dequantised.

    Safe to share between threads: a LiteRT interpreter has one set of input and output buffers, so each chunk's
    resize-set-invoke-read runs under a lock (shared unlocked, 8 threads made most calls raise and others return
    another call's embedding). Calls through one embedder therefore run one at a time; for parallel throughput give
    each thread its own embedder (`num_threads` sets the interpreter's own threads). The `interpreter` attribute
    itself is not guarded: use it from one thread.
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None, batch_size: int = 64):
        from ai_edge_litert.interpreter import Interpreter

        self.path = pathlib.Path(path)
        with quiet_native_output():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" notice
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_size = tuple(int(n) for n in self.input["shape"][1:3])
        self.feature_dim = int(self.output["shape"][-1])
        self.dynamic_batch = int(self.input["shape_signature"][0]) == -1
        if not self.dynamic_batch and int(self.input["shape"][0]) != 1:
            raise ValueError(
                f"{self.path}: input has a static batch of {self.input['shape'][0]}; expected 1 or a "
                "dynamic batch (shape_signature -1)"
            )
        self.batch_size = int(batch_size) if self.dynamic_batch else 1
        self._batch = 1
        self._lock = threading.Lock()

    def _quantized_input(self, pixels: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return pixels
        scale, zero_point = self.input["quantization"]
        limits = np.iinfo(dtype)
        return np.clip(np.round(pixels / scale + zero_point), limits.min, limits.max).astype(dtype)

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        chunk = self._quantized_input(chunk)
        with self._lock:
            if len(chunk) != self._batch:
                self.interpreter.resize_tensor_input(self.input["index"], [len(chunk), *self.input["shape"][1:]])
                self.interpreter.allocate_tensors()
                self._batch = len(chunk)
            self.interpreter.set_tensor(self.input["index"], chunk)
            self.interpreter.invoke()
            output = self.interpreter.get_tensor(self.output["index"])
        if output.dtype != np.float32:
            scale, zero_point = self.output["quantization"]
            return (output.astype(np.float32) - zero_point) * scale
        return output

    def embed_one(self, image: np.ndarray) -> np.ndarray:
        """The `(D,)` embedding of one `(H, W, 3)` image."""
        return self._run(np.asarray(image, np.float32)[None])[0]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = check_pixels(images, self.input_size, f"TFLite model {self.path}")
        return embed_in_batches(self._run, images, self.batch_size, self.feature_dim)
