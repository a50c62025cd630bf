"""Versioned SavedModel export for TF Serving, with a self-check in a fresh process (TF-ECOSYSTEM.md §1, §4)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from hacnn_tf.data.pipeline import decode_and_resize
from hacnn_tf.layers.preprocessing import model_inputs
from hacnn_tf.model import HACNN

SERVING_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "embed_images"
BYTES_INPUT = "image_bytes"
IMAGES_INPUT = "images"
OUTPUT = "embedding"
SELF_CHECK_TOLERANCE = 1e-5


class _EmbeddingModule(tf.Module):
    """The exported object: the model's variables and the two inference signatures."""

    def __init__(self, model: HACNN):
        super().__init__(name="hacnn")
        self.model = model
        height, width = model.input_size
        # The (height, width) the embed_images signature expects, kept for tools that re-trace it (TFLite).
        self.image_size = tf.Variable([height, width], trainable=False, name="image_size")
        # Any shape is accepted at the signature and checked in the graph: a loaded SavedModel does not check a
        # signature's declared shape, and a wrong rank would reach kernels that abort the process.
        self.embed_images = tf.function(
            self._embed_images, input_signature=[tf.TensorSpec((None, None, None, None), tf.float32, IMAGES_INPUT)],
            autograph=False)
        self.serve_bytes = tf.function(
            self._serve_bytes, input_signature=[tf.TensorSpec((None,), tf.string, BYTES_INPUT)], autograph=False)

    def _embed_images(self, images):
        """NHWC RGB pixels in [0, 255] at the model's input size -> `{"embedding": (N, D) float32}`.

        A batch of another rank, size or channel count is an `InvalidArgument` error naming the expected shape.
        Builtin TFLite ops only: `convert_tflite` converts this signature."""
        height, width = self.model.input_size
        images = tf.ensure_shape(images, (None, height, width, 3), name="check_images_shape")
        return {OUTPUT: self.model(model_inputs(self.model, images), training=False)}

    def _serve_bytes(self, image_bytes):
        """A batch of encoded JPEG/PNG/BMP/GIF files -> `{"embedding": (N, D) float32}`, decoded in the graph."""
        height, width = self.model.input_size
        nonempty = tf.debugging.assert_greater(
            tf.strings.length(image_bytes), 0, message="image_bytes holds an empty string, not an encoded image")
        with tf.control_dependencies([nonempty]):
            pixels = tf.map_fn(lambda data: decode_and_resize(data, (height, width)), image_bytes,
                               fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32))
        return self._embed_images(pixels)


def export_saved_model(model: HACNN, export_dir: str | os.PathLike, model_name: str = "hacnn", version: int = 1,
                       check: bool = True, warmup_images: list[bytes] | None = None) -> pathlib.Path:
    """Writes `<export_dir>/<model_name>/<version>/`, a SavedModel with the signatures

    - `serving_default`: `image_bytes` (string `[N]`, encoded JPEG/PNG) -> `embedding` (`[N, D]` float32);
    - `embed_images`: `images` (float32 `[N, H, W, 3]`, RGB pixels in 0..255, checked in the graph) -> `embedding`,

    both in inference mode with a dynamic batch. The version folder appears atomically (written beside it, then
    renamed); an existing version is never overwritten. With `check`, the export is reloaded with plain
    `tf.saved_model.load` in a fresh process that does not import hacnn_tf, and its embeddings must equal the Keras
    model's (max abs diff <= 1e-5, batches of 1 and 3), else the export is removed and an error raised. With
    `warmup_images`, TF Serving warm-up requests built from them go to `assets.extra/`.

    Returns the version folder.
    """
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive integer (TF Serving's version folder); got {version!r}")
    target = pathlib.Path(export_dir) / model_name / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists: TF Serving versions are immutable, export a new version number")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{version}.partial-", dir=target.parent))
    try:
        module = _EmbeddingModule(model)
        signatures = {SERVING_SIGNATURE: module.serve_bytes, IMAGES_SIGNATURE: module.embed_images}
        tf.saved_model.save(module, str(staging), signatures=signatures)
        if warmup_images:
            from hacnn_tf.serving.warmup import write_warmup_requests

            write_warmup_requests(staging, warmup_images, model_name)
        if check:
            check_saved_model(staging, model)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


_RELOAD_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
assert "hacnn_tf" not in sys.modules
loaded = tf.saved_model.load(sys.argv[1])
signature = loaded.signatures["embed_images"]
inputs = np.load(sys.argv[2])
outputs = {name: signature(images=tf.constant(inputs[name]))["embedding"].numpy() for name in inputs.files}
np.savez(sys.argv[3], **outputs)
print(json.dumps(sorted(loaded.signatures.keys())))
assert "hacnn_tf" not in sys.modules
"""


def check_saved_model(path: str | os.PathLike, model: HACNN, tolerance: float = SELF_CHECK_TOLERANCE) -> float:
    """Reloads the SavedModel at `path` in a fresh Python process without hacnn_tf and compares its `embed_images`
    output with `model` on random pixel batches of 1 and 3 images; returns the max abs diff or raises."""
    height, width = model.input_size
    rng = np.random.default_rng(0)
    batches = {f"batch{n}": rng.uniform(0, 255, size=(n, height, width, 3)).astype("float32") for n in (1, 3)}
    with tempfile.TemporaryDirectory() as scratch:
        inputs, outputs = pathlib.Path(scratch) / "in.npz", pathlib.Path(scratch) / "out.npz"
        np.savez(inputs, **batches)
        result = subprocess.run([sys.executable, "-c", _RELOAD_SCRIPT, str(path), str(inputs), str(outputs)],
                                capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if result.returncode:
            raise RuntimeError(f"SavedModel self-check: reloading {path} in a fresh process failed:\n"
                               f"{result.stderr[-3000:]}")
        signatures = json.loads(result.stdout.strip().splitlines()[-1])
        if signatures != sorted([SERVING_SIGNATURE, IMAGES_SIGNATURE]):
            raise RuntimeError(f"SavedModel self-check: signatures {signatures} in {path}")
        reloaded = np.load(outputs)
        worst = 0.0
        for name, images in batches.items():
            expected = keras.ops.convert_to_numpy(model(model_inputs(model, images), training=False))
            worst = max(worst, float(np.abs(reloaded[name] - expected).max()))
    if not worst <= tolerance:
        raise RuntimeError(f"SavedModel self-check: the reloaded export differs from the Keras model by {worst:.2e} "
                           f"(> {tolerance:.0e})")
    return worst
