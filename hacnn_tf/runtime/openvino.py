"""`Embedder` of an OpenVINO IR file (from `hacnn_tf.export.convert_openvino`) on OpenVINO's CPU plugin."""

from __future__ import annotations

import os
import pathlib
import threading

import numpy as np

from hacnn_tf.runtime.base import Embedder, check_pixels, embed_in_batches

INFERENCE_PRECISIONS = ("f32", "bf16", "f16")


class OpenVINOEmbedder(Embedder):
    """Compiles an OpenVINO IR embedding model (`images` `(?, H, W, 3)` pixels 0..255 -> `(?, D)`) for `device` and
    runs it synchronously, `batch_size` images per call.

    Args:
        path: the `.xml` file (its `.bin` beside it).
        inference_precision: the precision the plugin computes in: `None` for the device's default (on the CPU:
            `bf16` where the CPU has AMX or AVX512-BF16, else `f32`), or one of `"f32"`, `"bf16"`, `"f16"`. The
            compiled choice is `self.inference_precision`.
        num_threads: the plugin's inference threads (default: OpenVINO's, one per physical core).
        batch_size: images per inference call.
        device: OpenVINO device name.

    Compiled with `PERFORMANCE_HINT: LATENCY` (one stream using all the threads: what synchronous calls need). One
    infer request serves all calls, each under a lock; for parallel throughput give each thread its own embedder.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        inference_precision: str | None = None,
        num_threads: int | None = None,
        batch_size: int = 64,
        device: str = "CPU",
    ):
        import openvino as ov

        if inference_precision is not None and inference_precision not in INFERENCE_PRECISIONS:
            raise ValueError(
                f"inference_precision must be None or one of {INFERENCE_PRECISIONS}; got {inference_precision!r}"
            )
        self.path = pathlib.Path(path)
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if inference_precision is not None:
            config["INFERENCE_PRECISION_HINT"] = inference_precision
        if num_threads is not None:
            config["INFERENCE_NUM_THREADS"] = int(num_threads)
        core = ov.Core()
        model = core.read_model(str(self.path))
        (model_input,), (model_output,) = model.inputs, model.outputs
        shape = model_input.get_partial_shape()
        if shape.rank.get_length() != 4 or not all(shape[i].is_static for i in (1, 2, 3)) or shape[3].get_length() != 3:
            raise ValueError(f"{self.path}: input has shape {shape}; expected (?, H, W, 3) with H and W fixed")
        self.input_size = (shape[1].get_length(), shape[2].get_length())
        self.feature_dim = model_output.get_partial_shape()[-1].get_length()
        self.compiled = core.compile_model(model, device, config)
        self.inference_precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()
        self.batch_size = int(batch_size)

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._request.infer([chunk])[0].copy()

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        pixels = check_pixels(pixels, self.input_size, f"OpenVINO model {self.path}")
        return embed_in_batches(self._run, pixels, self.batch_size, self.feature_dim)
