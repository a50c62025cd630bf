"""OpenVINO IR conversion of the exported SavedModel's `embed_images` signature (`openvino.convert_model`)."""

from __future__ import annotations

import os
import pathlib
import tempfile

from hacnn_tf.serving.signatures import IMAGES_INPUT, IMAGES_SIGNATURE, OUTPUT

MODEL_NAME = "hacnn"


def convert_openvino(saved_model_dir: str | os.PathLike, output_dir: str | os.PathLike,
                     model_name: str = MODEL_NAME) -> pathlib.Path:
    """Converts the `embed_images` signature of an `export_saved_model` folder to OpenVINO IR; returns the `.xml`.

    Writes `<output_dir>/<model_name>.xml` and `.bin` with float32 weights (`compress_to_fp16=False`): the precision
    the CPU computes in is chosen when the model is compiled, not here. OpenVINO's CPU plugin defaults to bfloat16
    on CPUs with AMX or AVX512-BF16 and to float32 elsewhere; `OpenVINOEmbedder(inference_precision="f32")` keeps
    float32. The model takes `images` float32 `(?, H, W, 3)` RGB pixels 0..255 (dynamic batch, an empty batch
    included) and returns `embedding` `(?, D)`. The bytes signature is not converted (OpenVINO has no image
    decoder): decode and resize as `hacnn_tf.data.pipeline.decode_and_resize` does.

    The converter reads the signature of the loaded SavedModel (its `serving_default` takes encoded bytes, which it
    cannot convert). Both files appear together: they are written to a staging folder and moved into `output_dir`.
    """
    import openvino as ov
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model_dir))
    if IMAGES_SIGNATURE not in loaded.signatures:
        raise ValueError(f"{saved_model_dir}: no {IMAGES_SIGNATURE!r} signature; export it with "
                         "hacnn_tf.export.export_saved_model")
    model = ov.convert_model(loaded.signatures[IMAGES_SIGNATURE])
    names = [port.get_any_name() for port in model.inputs], [port.get_any_name() for port in model.outputs]
    if names != ([IMAGES_INPUT], [OUTPUT]):
        raise RuntimeError(f"openvino.convert_model gave inputs and outputs {names}")
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{model_name}.partial-", dir=output_dir) as staging:
        ov.save_model(model, str(pathlib.Path(staging) / f"{model_name}.xml"), compress_to_fp16=False)
        # The weights first: a reader that finds the .xml finds its .bin.
        for suffix in (".bin", ".xml"):
            os.replace(pathlib.Path(staging) / f"{model_name}{suffix}", output_dir / f"{model_name}{suffix}")
    return output_dir / f"{model_name}.xml"
