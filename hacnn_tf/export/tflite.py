"""TFLite / LiteRT conversion of the exported SavedModel: fp32, fp16 weights, dynamic-range int8, full int8."""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Iterable, Mapping

import numpy as np
import tensorflow as tf

from hacnn_tf.serving.signatures import IMAGES_INPUT, IMAGES_SIGNATURE, OUTPUT
from hacnn_tf.io_utils import atomic_output

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8")
# Layers whose ops stay float in the full-integer model (see `_float_island_nodes`).
FLOAT_LAYERS = ("hard_attention", "region_sampler")


def _batch_one_saved_model(saved_model_dir: pathlib.Path, scratch: pathlib.Path) -> pathlib.Path:
    """Re-exports the `embed_images` signature with a static batch of 1.

    Converting the dynamic-batch signature as it is can give a file the interpreter refuses to load
    ("BytesRequired number of elements overflowed"); edge devices run batch 1 anyway.
    """
    loaded = tf.saved_model.load(str(saved_model_dir))
    if IMAGES_SIGNATURE not in loaded.signatures:
        raise ValueError(f"{saved_model_dir}: no '{IMAGES_SIGNATURE}' signature; export it with "
                         "hacnn_tf.export.export_saved_model")
    signature = loaded.signatures[IMAGES_SIGNATURE]
    height, width = signature.structured_input_signature[1][IMAGES_INPUT].shape[1:3]
    module = tf.Module()
    module.loaded = loaded

    @tf.function(input_signature=[tf.TensorSpec((1, height, width, 3), tf.float32, name=IMAGES_INPUT)])
    def embed(images):
        return {OUTPUT: signature(images=images)[OUTPUT]}

    path = scratch / "batch1"
    tf.saved_model.save(module, str(path), signatures={"serving_default": embed})
    return path


def _float_island_nodes(float_flatbuffer: bytes) -> list[str]:
    """Output tensors of the region parameters and the sampling matrices, which int8 cannot carry.

    A sampling position spans the whole axis (80 rows at level 1): in 256 levels its step is 0.6 pixel, and the
    tent weights `relu(1 - |p - j|)` computed from it are off by up to half their range (12 % relative error of the
    crops, mean embedding cosine 0.975 measured on the demo model). The two batch matmuls that apply these
    matrices to the feature maps stay float too: XNNPACK runs float BATCH_MATMUL but not the int8 one with two
    dynamic operands, which TFLite's own kernel then ran outside the delegate, splitting the graph at every level
    (12 delegate partitions instead of 3, slower than fp32). They are 3 % of the multiply-adds.
    """
    from ai_edge_litert.interpreter import Interpreter

    names = [detail["name"] for detail in Interpreter(model_content=float_flatbuffer).get_tensor_details()]
    return [name for name in names if any(layer in name for layer in FLOAT_LAYERS)]


def _quantize(converter: tf.lite.TFLiteConverter, images: list[np.ndarray], float_nodes: list[str]) -> bytes:
    """Calibrates and quantises with the ops producing `float_nodes` left float (selective quantisation)."""
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_nodes)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: ([image] for image in images[:1]), debug_options=options)
    return debugger.get_nondebug_quantized_model()


def _interpreter_without_delegates(model: bytes | os.PathLike):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    return Interpreter(**source, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def tflite_op_counts(model: bytes | str | os.PathLike) -> dict[str, int]:
    """`{op name: count}` of a TFLite model's own graph (before XNNPACK takes ops over)."""
    counts: dict[str, int] = {}
    for detail in _interpreter_without_delegates(model)._get_ops_details():
        counts[detail["op_name"]] = counts.get(detail["op_name"], 0) + 1
    return counts


def _degenerate_nodes(flatbuffer: bytes, min_scale: float = 1e-6) -> list[str]:
    """int8 tensors whose calibrated range is empty (e.g. a dead ReLU map: a constant 0 on every calibration image).

    Their scale collapses to ~1e-8, and XNNPACK refuses to build the requantisation into them ("failed to create
    XNNPACK runtime"); left float, they cost nothing and the model loads.
    """
    return [detail["name"] for detail in _interpreter_without_delegates(flatbuffer).get_tensor_details()
            if detail["dtype"] == np.int8 and 0.0 < detail["quantization"][0] < min_scale]


def convert_tflite(
    saved_model_dir: str | os.PathLike,
    output_path: str | os.PathLike,
    quantization: str = "fp32",
    representative_images: Iterable[np.ndarray] | None = None,
) -> pathlib.Path:
    """Converts an export of `export_saved_model` to a `.tflite` file of builtin ops only, and returns its path.

    The model takes `images` `(1, H, W, 3)` RGB pixels in 0..255 (as `embed_images`) and returns `embedding`.

    Args:
        saved_model_dir: the version folder `export_saved_model` returned.
        output_path: the `.tflite` file to write (atomically).
        quantization: `"fp32"`; `"fp16"` (float16 weights); `"dynamic"` (int8 weights, float activations);
            `"int8"` (integer weights and activations, calibrated on `representative_images`; only the computation
            of the sampling matrices from the region translations stays float: see `_float_island_nodes`).
        representative_images: for `"int8"`: `(H, W, 3)` or `(1, H, W, 3)` pixel arrays (0..255) of real training
            images, a few hundred at most (random noise gives ranges that XNNPACK refuses at load time).

    Input and output stay float32 in every variant (the int8 model quantises the pixels in its first op).
    Conversion fails if any op would need the Flex delegate (`TFLITE_BUILTINS` only).
    """
    output_path = pathlib.Path(output_path)
    paths = convert_tflite_variants(saved_model_dir, {quantization: output_path}, representative_images)
    return paths[quantization]


def convert_tflite_variants(
    saved_model_dir: str | os.PathLike,
    outputs: Mapping[str, str | os.PathLike],
    representative_images: Iterable[np.ndarray] | None = None,
) -> dict[str, pathlib.Path]:
    """`convert_tflite` for several variants (`{quantization: output_path}`) from one batch-1 re-export."""
    unknown = [q for q in outputs if q not in QUANTIZATIONS]
    if unknown:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}; got {unknown[0]!r}")
    images = None
    if "int8" in outputs:
        if representative_images is None:
            raise ValueError("quantization='int8' needs representative_images (training images, pixels 0..255)")
        images = [np.asarray(i, np.float32).reshape((1, *np.shape(i)[-3:])) for i in representative_images]
        if not images:
            raise ValueError("representative_images is empty")
    written = {}
    with tempfile.TemporaryDirectory() as scratch:
        batch_one = str(_batch_one_saved_model(pathlib.Path(saved_model_dir), pathlib.Path(scratch)))

        def converter_for(*optimizations):
            converter = tf.lite.TFLiteConverter.from_saved_model(batch_one)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            converter.optimizations = list(optimizations)
            return converter

        float_model = None
        if "fp32" in outputs or "int8" in outputs:
            float_model = converter_for().convert()
        for quantization, output_path in outputs.items():
            if quantization == "fp32":
                flatbuffer = float_model
            elif quantization == "int8":
                converter = converter_for(tf.lite.Optimize.DEFAULT)
                converter.representative_dataset = lambda: ([image] for image in images)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                       tf.lite.OpsSet.TFLITE_BUILTINS]
                float_nodes = _float_island_nodes(float_model)
                flatbuffer = _quantize(converter, images, float_nodes)
                degenerate = _degenerate_nodes(flatbuffer)
                if degenerate:
                    flatbuffer = _quantize(converter, images, float_nodes + degenerate)
            else:
                converter = converter_for(tf.lite.Optimize.DEFAULT)
                if quantization == "fp16":
                    converter.target_spec.supported_types = [tf.float16]
                flatbuffer = converter.convert()
            with atomic_output(output_path) as tmp:
                tmp.write_bytes(flatbuffer)
            written[quantization] = pathlib.Path(output_path)
    return written
