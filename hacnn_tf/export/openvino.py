"""OpenVINO IR conversion of the exported SavedModel's `embed_images` signature (`openvino.convert_model`), and its
int8 post-training quantisation with NNCF."""

from __future__ import annotations

import os
import pathlib

import numpy as np

from hacnn_tf.export.formats import MODEL_NAME
from hacnn_tf.io_utils import staging_folder
from hacnn_tf.serving.signatures import IMAGES_INPUT, IMAGES_SIGNATURE, OUTPUT


def convert_openvino(
    saved_model_dir: str | os.PathLike, output_dir: str | os.PathLike, model_name: str = MODEL_NAME
) -> pathlib.Path:
    """Converts the `embed_images` signature of an `export_saved_model` folder to OpenVINO IR; returns the `.xml`.

    Writes `<output_dir>/<model_name>.xml` and `.bin` with float32 weights (`compress_to_fp16=False`): the precision
    the CPU computes in is chosen when the model is compiled, not here. OpenVINO's CPU plugin defaults to bfloat16
    on CPUs with AMX or AVX512-BF16 and to float32 elsewhere; `OpenVINOEmbedder(inference_precision="f32")` keeps
    float32. The model takes `images` float32 `(?, H, W, 3)` RGB pixels 0..255 (dynamic batch, an empty batch
    included) and returns `embedding` `(?, D)`. The bytes signature is not converted (OpenVINO has no image
    decoder): decode and resize as `hacnn_tf.HACNNPreprocessor` does.

    The converter reads the signature of the loaded SavedModel (its `serving_default` takes encoded bytes, which it
    cannot convert). Both files appear together: they are written to a staging folder and moved into `output_dir`.
    """
    import openvino as ov
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model_dir))
    if IMAGES_SIGNATURE not in loaded.signatures:
        raise ValueError(
            f"{saved_model_dir}: no {IMAGES_SIGNATURE!r} signature; export it with hacnn_tf.export.export_saved_model"
        )
    model = ov.convert_model(loaded.signatures[IMAGES_SIGNATURE])
    names = [port.get_any_name() for port in model.inputs], [port.get_any_name() for port in model.outputs]
    if names != ([IMAGES_INPUT], [OUTPUT]):
        raise RuntimeError(f"openvino.convert_model gave inputs and outputs {names}")
    return _save_ir(model, pathlib.Path(output_dir), model_name)


def _save_ir(model, output_dir: pathlib.Path, model_name: str) -> pathlib.Path:
    """Saves an `openvino.Model` as `<output_dir>/<model_name>.xml` + `.bin` with float32 weights, both appearing
    together (written to a staging folder, then moved); returns the `.xml`."""
    import openvino as ov

    with staging_folder(output_dir, f".{model_name}.partial-") as staging:
        ov.save_model(model, str(staging / f"{model_name}.xml"), compress_to_fp16=False)
        # The weights first: a reader that finds the .xml finds its .bin.
        for suffix in (".bin", ".xml"):
            os.replace(staging / f"{model_name}{suffix}", output_dir / f"{model_name}{suffix}")
    return output_dir / f"{model_name}.xml"


def quantize_openvino(
    xml_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    calibration_images: np.ndarray,
    model_name: str = MODEL_NAME,
) -> pathlib.Path:
    """Post-training int8 quantisation of a `convert_openvino` IR with NNCF (`nncf.quantize`, its default
    `PERFORMANCE` preset: symmetric int8 weights and activations of the convolutions and matmuls, fast bias
    correction), calibrated on `calibration_images` `(N, H, W, 3)` pixels 0..255 of training images (one image per
    calibration step, all of them); returns the `.xml`, written as `convert_openvino` writes it.

    NNCF stores the weights of every convolution and matmul as int8 and puts FakeQuantize ops on their inputs;
    OpenVINO's CPU plugin runs those in int8 (VNNI) and the rest, the sampler's six matmuls of two activations
    among them (NNCF leaves them float), at the compiled inference precision.
    """
    import nncf
    import openvino as ov

    images = np.asarray(calibration_images, np.float32)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"calibration_images must be a non-empty (N, H, W, 3) pixel array; got shape {images.shape}")
    model = ov.Core().read_model(str(xml_path))
    quantized = nncf.quantize(model, nncf.Dataset([image[None] for image in images]), subset_size=len(images))
    return _save_ir(quantized, pathlib.Path(output_dir), model_name)
