"""ONNX conversion of the exported SavedModel's `embed_images` signature with tf2onnx, for ONNX Runtime (and any
other ONNX consumer: OpenVINO, TensorRT)."""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile

from hacnn_tf._startup import without_native_noise
from hacnn_tf.export.child_process import run_child
from hacnn_tf.io_utils import atomic_output
from hacnn_tf.serving.signatures import IMAGES_INPUT, IMAGES_SIGNATURE, OUTPUT, SERVE_TAG

DEFAULT_OPSET = 17
BATCH_DIM = "batch"


def convert_onnx(
    saved_model_dir: str | os.PathLike,
    output_path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    scratch_dir: str | os.PathLike | None = None,
) -> pathlib.Path:
    """Converts the `embed_images` signature of an `export_saved_model` folder to an ONNX file; returns its path.

    The model takes `images` float32 `(batch, H, W, 3)` RGB pixels in 0..255 (the batch dimension is dynamic and
    named `batch`, an empty batch included) and returns `embedding` float32 `(batch, D)`, normalised in the graph as
    in the SavedModel. The bytes signature (`serving_default`) has no ONNX form: ONNX Runtime implements no image
    decoder, so clients decode and resize as `hacnn_tf.HACNNPreprocessor` does (bilinear with
    antialiasing). Unlike the SavedModel the graph does not refuse NaN pixels (tf2onnx drops `CheckNumerics`).

    Runs tf2onnx's command (`python -m tf2onnx.convert --saved-model ... --signature_def embed_images`) in a child
    process, which fails on any op it cannot convert; the file is checked with `onnx.checker` and written atomically.
    The child dies with this process and keeps its temporary files in a temporary folder in `scratch_dir`
    (`hacnn_tf.export.child_process`).

    Args:
        saved_model_dir: the version folder `export_saved_model` returned.
        output_path: the `.onnx` file to write.
        opset: ONNX opset of the default domain, at least 17 (read by current ONNX Runtime, OpenVINO and
            TensorRT releases).
        scratch_dir: where the converter's temporary folder goes (default: the system's temporary folder);
            `export_all` gives its staging folder.
    """
    import onnx

    if opset < DEFAULT_OPSET:
        raise ValueError(f"opset must be at least {DEFAULT_OPSET}; got {opset}")
    output_path = pathlib.Path(output_path)
    with tempfile.TemporaryDirectory(prefix=".onnx-", dir=scratch_dir) as scratch:
        converted = pathlib.Path(scratch) / "model.onnx"
        result = run_child(
            [
                sys.executable,
                "-m",
                "tf2onnx.convert",
                "--saved-model",
                str(saved_model_dir),
                "--tag",
                SERVE_TAG,
                "--signature_def",
                IMAGES_SIGNATURE,
                "--opset",
                str(opset),
                "--output",
                str(converted),
            ],
            scratch,
        )
        if result.returncode or not converted.exists():
            raise RuntimeError(
                f"tf2onnx could not convert {saved_model_dir}:\n{without_native_noise(result.stderr)[-3000:]}"
            )
        model = onnx.load(str(converted))
    inputs, outputs = [v.name for v in model.graph.input], [v.name for v in model.graph.output]
    if inputs != [IMAGES_INPUT] or outputs != [OUTPUT]:
        raise RuntimeError(
            f"tf2onnx gave inputs {inputs} and outputs {outputs}; expected [{IMAGES_INPUT!r}] and [{OUTPUT!r}]"
        )
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
    model.doc_string = (
        f"HA-CNN {IMAGES_SIGNATURE}: {IMAGES_INPUT} float32 (batch, H, W, 3) RGB pixels 0..255 -> "
        f"{OUTPUT} float32 (batch, D), L2-normalised per branch"
    )
    onnx.checker.check_model(model, full_check=True)
    with atomic_output(output_path) as tmp:
        onnx.save(model, str(tmp))
    return output_path
