"""TFLite / LiteRT conversion of the exported SavedModel: fp32, fp16 weights, dynamic-range int8, full int8 (float32
or uint8 pixels in), at batch 1 or with a dynamic batch."""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Iterable, Mapping

import numpy as np
import tensorflow as tf

from hacnn_tf._startup import quiet_native_output
from hacnn_tf.export.saved_model import read_model_facts
from hacnn_tf.io_utils import atomic_output
from hacnn_tf.serving.signatures import IMAGES_INPUT, IMAGES_SIGNATURE, OUTPUT

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8", "uint8")


def _signature_saved_model(saved_model_dir: pathlib.Path, scratch: pathlib.Path, batch: int | None) -> pathlib.Path:
    """Re-exports the `embed_images` signature with a static batch of `batch` (`None`: dynamic) as the only one.

    The exported `serving_default` takes encoded bytes, which TFLite cannot decode.
    """
    loaded = tf.saved_model.load(str(saved_model_dir))
    if IMAGES_SIGNATURE not in loaded.signatures:
        raise ValueError(
            f"{saved_model_dir}: no '{IMAGES_SIGNATURE}' signature; export it with hacnn_tf.export.export_saved_model"
        )
    signature = loaded.signatures[IMAGES_SIGNATURE]
    height, width = signature.structured_input_signature[1][IMAGES_INPUT].shape[1:3]
    module = tf.Module()
    module.loaded = loaded

    @tf.function(input_signature=[tf.TensorSpec((batch, height, width, 3), tf.float32, name=IMAGES_INPUT)])
    def embed(images):
        return {OUTPUT: signature(images=images)[OUTPUT]}

    path = scratch / f"batch{batch or 'any'}"
    tf.saved_model.save(module, str(path), signatures={"serving_default": embed})
    return path


def _declare_dynamic_batch(flatbuffer: bytes) -> bytes:
    """The flatbuffer with every tensor whose static shape holds a -1 given that shape as its `shape_signature`
    and a 1 in its `shape`.

    The converter writes some RESHAPE outputs of a dynamic-batch graph with a -1 in the static shape and no shape
    signature; the interpreter then refuses the file at load time
    ("BytesRequired number of elements overflowed ... Tensor N is invalidly specified in schema"). Declared as every
    other dynamic tensor is (batch 1 in the file, -1 in the signature), the file loads, and `resize_tensor_input` +
    `allocate_tensors` give any batch, under XNNPACK too.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    undeclared = [
        tensor
        for subgraph in model.subgraphs
        for tensor in subgraph.tensors
        if tensor.shape is not None and (np.asarray(tensor.shape) < 0).any()
    ]
    if not undeclared:
        return flatbuffer
    for tensor in undeclared:
        shape = np.asarray(tensor.shape, np.int32)
        tensor.shapeSignature = shape
        tensor.shape = np.where(shape < 0, 1, shape).astype(np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _uint8_pixel_input(int8_flatbuffer: bytes) -> bytes:
    """The full-integer model with a uint8 input of scale 1 and zero point 0: the pixels 0..255 themselves.

    `modify_model_io_type` turns the first QUANTIZE (float32 -> int8) into a requantisation uint8 -> int8 and gives
    the input the calibrated scale (the largest pixel of the calibration images / 255, e.g. 0.9975); set to 1, a
    client feeds its decoded uint8 pixels unchanged and the requantisation maps them onto the calibrated int8 range
    exactly as the float32 model's QUANTIZE did. The output stays float32 (the dequantised embedding: an int8
    output would round each of the L2-normalised features to 1/128).

    The same ops stay float as in the int8 model (`_float_island_nodes`: the region parameters and sampling
    matrices, which 256 levels cannot carry, and the two batch matmuls that apply them, which XNNPACK runs only as
    float): an accelerator of integer ops only (an Edge TPU, an NPU) leaves them, 3 % of the multiply-adds, to the
    CPU.
    """
    from tensorflow.lite.python.util import modify_model_io_type
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(
        bytearray(modify_model_io_type(int8_flatbuffer, tf.uint8, tf.float32))
    )
    for subgraph in model.subgraphs:
        for index in subgraph.inputs:
            subgraph.tensors[index].quantization.scale = [1.0]
            subgraph.tensors[index].quantization.zeroPoint = [0]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _float_island_nodes(float_flatbuffer: bytes, layer_names: Iterable[str]) -> list[str]:
    """Output tensors of the layers `layer_names` (the model's `float_island_layers`, as its export records them:
    the region parameters and the sampling matrices), which int8 cannot carry.

    A sampling position spans the whole axis (80 rows at level 1): in 256 levels its step is 0.6 pixel, and the
    tent weights `relu(1 - |p - j|)` computed from it are off by up to half their range (docs/deployment.md#tflite
    gives the measured cost). The two batch matmuls that apply these matrices to the feature maps stay float too:
    XNNPACK runs float BATCH_MATMUL but not the int8 one with two dynamic operands, which TFLite's own kernel would
    run outside the delegate, splitting the graph at every level.
    """
    from ai_edge_litert.interpreter import Interpreter

    with quiet_native_output():  # LiteRT's delegate notice
        names = [detail["name"] for detail in Interpreter(model_content=float_flatbuffer).get_tensor_details()]
    layer_names = list(layer_names)
    return [name for name in names if any(layer in name for layer in layer_names)]


def _quantize(converter: tf.lite.TFLiteConverter, float_nodes: list[str]) -> bytes:
    """Calibrates on the converter's representative data set and quantises with the ops producing `float_nodes`
    left float (selective quantisation).

    The two steps of `tf.lite.experimental.QuantizationDebugger(...).get_nondebug_quantized_model()`, the same
    calibrated model and the same quantiser call, without the numeric-verify model the debugger also builds and
    loads into the deprecated `tf.lite.Interpreter`.
    """
    from tensorflow.lite.python import convert

    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True
    with quiet_native_output():  # the calibrator's delegate notice and the quantiser's settings line
        calibrated = converter.convert()
        return convert.mlir_quantize(
            calibrated,
            disable_per_channel=converter._experimental_disable_per_channel,
            fully_quantize=False,
            enable_numeric_verify=False,
            denylisted_nodes=float_nodes,
        )


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
    return [
        detail["name"]
        for detail in _interpreter_without_delegates(flatbuffer).get_tensor_details()
        if detail["dtype"] == np.int8 and 0.0 < detail["quantization"][0] < min_scale
    ]


def convert_tflite(
    saved_model_dir: str | os.PathLike,
    output_path: str | os.PathLike,
    quantization: str = "fp32",
    representative_images: Iterable[np.ndarray] | None = None,
    batch: int | None = 1,
) -> pathlib.Path:
    """Converts an export of `export_saved_model` to a `.tflite` file of builtin ops only, and returns its path.

    The model takes `images` `(batch, H, W, 3)` RGB pixels in 0..255 (as `embed_images`) and returns `embedding`.

    Args:
        saved_model_dir: the version folder `export_saved_model` returned.
        output_path: the `.tflite` file to write (atomically).
        quantization: `"fp32"`; `"fp16"` (float16 weights); `"dynamic"` (int8 weights, float activations);
            `"int8"` (integer weights and activations, calibrated on `representative_images`; only the computation
            of the sampling matrices from the region translations stays float: see `_float_island_nodes`);
            `"uint8"` (the int8 model taking uint8 pixels, scale 1 and zero point 0: `_uint8_pixel_input`).
        representative_images: for `"int8"` and `"uint8"`: `(H, W, 3)` or `(1, H, W, 3)` pixel arrays (0..255) of
            real training images, a few hundred at most (random noise gives ranges that XNNPACK refuses at load
            time).
        batch: the file's batch: 1 (edge devices), or `None` for a dynamic batch (`shape_signature` -1: resize the
            input with `resize_tensor_input` and `allocate_tensors` before invoking; `TFLiteEmbedder` does).

    The input is float32 in every variant but `"uint8"` (the int8 model quantises the pixels in its first op); the
    output is float32 in all. Conversion fails if any op would need the Flex delegate (`TFLITE_BUILTINS` only).
    """
    output_path = pathlib.Path(output_path)
    paths = convert_tflite_variants(saved_model_dir, {quantization: output_path}, representative_images, batch)
    return paths[quantization]


def convert_tflite_variants(
    saved_model_dir: str | os.PathLike,
    outputs: Mapping[str, str | os.PathLike],
    representative_images: Iterable[np.ndarray] | None = None,
    batch: int | None = 1,
    scratch_dir: str | os.PathLike | None = None,
) -> dict[str, pathlib.Path]:
    """`convert_tflite` for several variants (`{quantization: output_path}`) from one re-export at `batch`, staged
    in a temporary folder in `scratch_dir` (default: the system's temporary folder; `export_all` gives its staging
    folder)."""
    unknown = [q for q in outputs if q not in QUANTIZATIONS]
    if unknown:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}; got {unknown[0]!r}")
    integer = [q for q in ("int8", "uint8") if q in outputs]
    images = None
    if integer:
        if representative_images is None:
            raise ValueError(
                f"quantization={integer[0]!r} needs representative_images (training images, pixels 0..255)"
            )
        images = [np.asarray(i, np.float32).reshape((1, *np.shape(i)[-3:])) for i in representative_images]
        if not images:
            raise ValueError("representative_images is empty")
    written = {}
    with tempfile.TemporaryDirectory(prefix=".tflite-", dir=scratch_dir) as scratch:
        signature_model = str(_signature_saved_model(pathlib.Path(saved_model_dir), pathlib.Path(scratch), batch))

        def converter_for(*optimizations):
            converter = tf.lite.TFLiteConverter.from_saved_model(signature_model)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            converter.optimizations = list(optimizations)
            return converter

        float_model = int8_model = None
        if "fp32" in outputs or integer:
            float_model = converter_for().convert()
        if integer:
            converter = converter_for(tf.lite.Optimize.DEFAULT)
            converter.representative_dataset = lambda: ([image] for image in images)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
            float_layers = read_model_facts(saved_model_dir)["float_island_layers"]
            float_nodes = _float_island_nodes(_declare_dynamic_batch(float_model), float_layers)
            int8_model = _quantize(converter, float_nodes)
            degenerate = _degenerate_nodes(_declare_dynamic_batch(int8_model))
            if degenerate:
                int8_model = _quantize(converter, float_nodes + degenerate)
        for quantization, output_path in outputs.items():
            if quantization == "fp32":
                flatbuffer = float_model
            elif quantization == "int8":
                flatbuffer = int8_model
            elif quantization == "uint8":
                flatbuffer = _uint8_pixel_input(int8_model)
            else:
                converter = converter_for(tf.lite.Optimize.DEFAULT)
                if quantization == "fp16":
                    converter.target_spec.supported_types = [tf.float16]
                flatbuffer = converter.convert()
            with atomic_output(output_path) as tmp:
                tmp.write_bytes(_declare_dynamic_batch(flatbuffer))
            written[quantization] = pathlib.Path(output_path)
    return written
