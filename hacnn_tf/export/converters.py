"""One converter per export family (`hacnn_tf.export.formats.ExportFamily.converter`): each writes its formats from
the float32 SavedModel into staging folders, says what their manifests hold and how to run them for the parity
check. `export_all` calls them in `FAMILIES`' order and checks, records and renames what they stage."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hacnn_tf.export.formats import MODEL_NAME, ExportFormat
from hacnn_tf.model import HACNN
from hacnn_tf.serving.signatures import (
    BOXES_INPUT,
    BOXES_PIXELS_SIGNATURE,
    BOXES_SIGNATURE,
    BYTES_INPUT,
    IMAGES_INPUT,
    IMAGES_SIGNATURE,
    OUTPUT,
    SERVING_SIGNATURE,
)


@dataclasses.dataclass(frozen=True)
class Conversion:
    """What every converter converts from.

    Attributes:
        model: the float32 Keras HA-CNN.
        source: the float32 SavedModel version folder (`export_saved_model`'s) the others are converted from.
        scratch: the export's staging folder: each format's folder is staged in it, and the converters' temporary
            files go there too.
        calibration_images: `(N, H, W, 3)` pixels (0..255) of training images for the calibrated formats, or None.
        saved_model_options: keyword arguments of every `export_saved_model` call (`model_name` and `version`
            included).
    """

    model: HACNN
    source: pathlib.Path
    scratch: pathlib.Path
    calibration_images: np.ndarray | None
    saved_model_options: Mapping[str, Any]


@dataclasses.dataclass
class Staged:
    """A converted format in its staging folder: what its manifest says and how to run it."""

    folder: pathlib.Path
    model: str
    input_spec: dict
    exporters: dict
    embedders: dict[str, Callable[[], Callable[[np.ndarray], np.ndarray]]]
    notes: dict = dataclasses.field(default_factory=dict)
    # The parity target of each check not named as the format (default: `HALF_PRECISION_TARGET`).
    targets: dict = dataclasses.field(default_factory=dict)


def base_versions() -> dict[str, str]:
    """The versions every manifest records as its exporters."""
    import keras
    import tensorflow as tf

    import hacnn_tf

    return {"hacnn-tf": hacnn_tf.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}


def input_spec(
    batch: int, model: HACNN, signature: str | None = None, pixels_dtype: str = "float32", max_boxes: int | None = None
) -> dict:
    """The manifest's `input_spec`: the pixels (`batch` of them, -1 for any) and the embedding, the bytes input of
    `signature`'s SavedModel and its boxes input up to `max_boxes`."""
    spec = {
        IMAGES_INPUT: {
            "dtype": pixels_dtype,
            "shape": [batch, *model.input_size, 3],
            "values": "RGB pixels 0..255 as HACNNPreprocessor decodes and resizes them, not normalised",
        },
        "output": {
            OUTPUT: {
                "dtype": "float32",
                "shape": [batch, model.embedding_dim],
                "values": "global and local features, each L2-normalised",
            }
        },
    }
    if pixels_dtype == "uint8":
        spec[IMAGES_INPUT]["quantization"] = {"scale": 1.0, "zero_point": 0}
        spec[IMAGES_INPUT]["values"] = (
            "RGB pixels 0..255 as uint8: HACNNPreprocessor's values rounded, or the decoded image's own bytes"
        )
    if signature is not None:
        spec[IMAGES_INPUT]["signature"] = signature
        spec[BYTES_INPUT] = {
            "dtype": "string",
            "shape": [-1],
            "signature": SERVING_SIGNATURE,
            "values": "encoded JPEG/PNG/BMP/GIF files, decoded and resized in the graph",
        }
    if max_boxes is not None:
        spec[BOXES_INPUT] = {
            "dtype": "float32",
            "shape": [-1, -1, 4],
            "max_boxes": max_boxes,
            "signature": [BOXES_SIGNATURE, BOXES_PIXELS_SIGNATURE],
            "values": f"each frame's boxes x1, y1, x2, y2 in pixels, padded with 0, 0, 0, 0; at most "
            f"{max_boxes} per row (a wider row is refused)",
        }
    return spec


def convert_saved_models(conversion: Conversion, formats: Sequence[ExportFormat]) -> dict[str, Staged]:
    """The SavedModels of `formats`: float32 is the source itself, bf16 and fp16 are exported again
    (`export_saved_model(precision=...)`, self-checked)."""
    from hacnn_tf.export.saved_model import export_saved_model, exported_max_boxes

    options = conversion.saved_model_options
    staged = {}
    for fmt in formats:
        folder = conversion.scratch / fmt.name
        version = (
            conversion.source
            if fmt.precision == "fp32"
            else export_saved_model(conversion.model, folder, **options, precision=fmt.precision)
        )
        spec = input_spec(fmt.family.batch, conversion.model, IMAGES_SIGNATURE, max_boxes=exported_max_boxes(version))
        staged[fmt.name] = Staged(
            folder,
            f"{options['model_name']}/{options['version']}",
            spec,
            base_versions(),
            {fmt.name: lambda v=version, f=fmt: f.load()(v)},
        )
    return staged


def convert_tflite_models(conversion: Conversion, formats: Sequence[ExportFormat]) -> dict[str, Staged]:
    """The TFLite variants of `formats` (all of one family: one batch) from one re-export of the source
    (`convert_tflite_variants`); the int8 ones' manifests name the layers kept float."""
    from hacnn_tf.export.saved_model import read_model_facts
    from hacnn_tf.export.tflite import convert_tflite_variants

    scratch = conversion.scratch
    batch = formats[0].family.batch
    outputs = {fmt.precision: scratch / fmt.name / f"{MODEL_NAME}.tflite" for fmt in formats}
    paths = convert_tflite_variants(
        conversion.source,
        outputs,
        conversion.calibration_images,
        None if batch == -1 else batch,
        scratch_dir=scratch,
    )
    staged = {}
    for fmt in formats:
        path = paths[fmt.precision]
        notes = (
            {"float_layers": read_model_facts(conversion.source)["float_island_layers"]}
            if fmt.precision in ("int8", "uint8")
            else {}
        )
        staged[fmt.name] = Staged(
            path.parent,
            path.name,
            input_spec(batch, conversion.model, pixels_dtype=fmt.images),
            base_versions(),
            {fmt.name: lambda p=path, f=fmt: f.load()(p)},
            notes,
        )
    return staged


def convert_onnx_model(conversion: Conversion, formats: Sequence[ExportFormat]) -> dict[str, Staged]:
    """The float32 ONNX model (`convert_onnx`, dynamic batch)."""
    import onnx
    import tf2onnx

    from hacnn_tf.export import onnx as onnx_export

    (fmt,) = formats
    path = onnx_export.convert_onnx(
        conversion.source, conversion.scratch / fmt.name / f"{MODEL_NAME}.onnx", scratch_dir=conversion.scratch
    )
    return {
        fmt.name: Staged(
            path.parent,
            path.name,
            input_spec(fmt.family.batch, conversion.model),
            {**base_versions(), "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__},
            {fmt.name: lambda p=path, f=fmt: f.load()(p)},
            {"opset": onnx_export.DEFAULT_OPSET},
        )
    }


def convert_openvino_models(conversion: Conversion, formats: Sequence[ExportFormat]) -> dict[str, Staged]:
    """The OpenVINO IRs of `formats` from one conversion (`convert_openvino`, float32 weights), int8 quantised from it
    by NNCF on the calibration images (`quantize_openvino`). Each is checked at float32 and, where the CPU computes
    in another precision by default, at that one too (`<name>@<precision>`, against the format's
    `cpu_default_target`)."""
    import openvino

    from hacnn_tf.export.openvino import convert_openvino, quantize_openvino

    versions = {**base_versions(), "openvino": openvino.get_version()}
    float_ir = convert_openvino(conversion.source, conversion.scratch / "openvino-fp32")
    staged = {}
    for fmt in formats:
        embedder = fmt.load()
        path, exporters = float_ir, versions
        if fmt.calibrated:
            import nncf

            path = quantize_openvino(float_ir, conversion.scratch / fmt.name, conversion.calibration_images)
            exporters = {**versions, "nncf": nncf.__version__}
        default = embedder(path)
        embedders = {fmt.name: lambda p=path, cls=embedder: cls(p, inference_precision="f32")}
        at_default = f"{fmt.name}@{default.inference_precision}"
        if default.inference_precision != "f32":
            embedders[at_default] = lambda d=default: d
        staged[fmt.name] = Staged(
            path.parent,
            path.name,
            input_spec(fmt.family.batch, conversion.model),
            exporters,
            embedders,
            {"cpu_default_inference_precision": default.inference_precision},
            {at_default: fmt.cpu_default_target} if fmt.cpu_default_target is not None else {},
        )
    return staged
