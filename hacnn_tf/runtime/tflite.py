"""`Embedder` of a `.tflite` file (from `hacnn_tf.export.convert_tflite`) run with LiteRT (`ai_edge_litert`)."""

from __future__ import annotations

import os
import pathlib
import threading

import numpy as np

from hacnn_tf.runtime.base import check_pixels


class TFLiteEmbedder:
    """Runs a `.tflite` embedding model with `ai_edge_litert` (XNNPACK), one image at a time (the files have a static
    batch of 1).

    Call with `(N, H, W, 3)` RGB pixels in 0..255; returns `(N, D)` float32. Safe to share between threads: a LiteRT
    interpreter has one set of input and output buffers, so each image's set-invoke-read runs under a lock (shared
    unlocked, 8 threads made most calls raise and others return another call's embedding). Calls through one embedder
    therefore run one at a time; for parallel throughput give each thread its own embedder (`num_threads` sets the
    interpreter's own threads). The `interpreter` attribute itself is not guarded: use it from one thread.
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = pathlib.Path(path)
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_size = tuple(int(n) for n in self.input["shape"][1:3])
        self._lock = threading.Lock()

    def embed_one(self, image: np.ndarray) -> np.ndarray:
        """The `(D,)` embedding of one `(H, W, 3)` image."""
        batch = image[None].astype(self.input["dtype"], copy=False)
        with self._lock:
            self.interpreter.set_tensor(self.input["index"], batch)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output["index"])[0].astype(np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = check_pixels(images, self.input_size, f"TFLite model {self.path}")
        if len(images) == 0:
            return np.zeros((0, int(self.output["shape"][-1])), np.float32)
        return np.stack([self.embed_one(image) for image in images])
