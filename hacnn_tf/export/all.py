"""Every deployment format from one SavedModel export, each in its own folder with a manifest, each checked against
the Keras model before it is put in place."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import tempfile
from typing import Any, Callable, Iterable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

import hacnn_tf
from hacnn_tf.export.manifest import write_manifest
from hacnn_tf.io_utils import exclusive_lock, remove_partial_dirs
from hacnn_tf.export.saved_model import export_saved_model, row_cosines
from hacnn_tf.model import HACNN
from hacnn_tf.serving.signatures import BYTES_INPUT, IMAGES_INPUT, IMAGES_SIGNATURE, OUTPUT, SERVING_SIGNATURE

MODEL_NAME = "hacnn"
# `<format>-<precision>`: the folder name under `out_dir`.
FORMATS = ("saved_model-fp32", "saved_model-bf16", "saved_model-fp16", "tflite-fp32", "tflite-fp16",
           "tflite-dynamic", "tflite-int8", "tflite-uint8", "tflite_batch-fp32", "onnx-fp32", "openvino-fp32",
           "openvino-int8")
# The formats quantised on calibration images.
CALIBRATED = ("tflite-int8", "tflite-uint8", "openvino-int8")
# Parity of each format's embeddings with the Keras model's on the check images: `(max abs diff, mean cosine)`
# bounds, None where not bounded. OpenVINO is also checked at the CPU's default inference precision (bf16 on CPUs
# with AVX512-BF16 or AMX): float32 IR against the half-precision bound, int8 against the int8 bound.
FLOAT32_TARGET = (1e-5, None)
TFLITE_FLOAT32_TARGET = (1e-4, None)
HALF_PRECISION_TARGET = (None, 0.999)
INT8_TARGET = (None, 0.99)
TARGETS = {"saved_model-fp32": FLOAT32_TARGET, "saved_model-bf16": HALF_PRECISION_TARGET,
           "saved_model-fp16": HALF_PRECISION_TARGET, "tflite-fp32": TFLITE_FLOAT32_TARGET,
           "tflite-fp16": HALF_PRECISION_TARGET, "tflite-dynamic": INT8_TARGET, "tflite-int8": INT8_TARGET,
           "tflite-uint8": INT8_TARGET, "tflite_batch-fp32": TFLITE_FLOAT32_TARGET, "onnx-fp32": FLOAT32_TARGET,
           "openvino-fp32": FLOAT32_TARGET, "openvino-int8": INT8_TARGET}
NUM_RANDOM_CHECK_IMAGES = 16
# An export's staging folder in `out_dir`: `<prefix><random>/`.
STAGING_PREFIX = ".export-all.partial-"


@dataclasses.dataclass
class _Staged:
    """A converted format in its staging folder: what its manifest says and how to run it."""

    folder: pathlib.Path
    model: str
    input_spec: dict
    exporters: dict
    embedders: dict[str, Callable[[], Callable[[np.ndarray], np.ndarray]]]
    notes: dict = dataclasses.field(default_factory=dict)
    # The parity target of each check not named as the format (default: `HALF_PRECISION_TARGET`).
    targets: dict = dataclasses.field(default_factory=dict)


def parity(embeddings: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """`{"max_abs_diff", "mean_cosine", "min_cosine"}` of `(N, D)` embeddings against the reference's."""
    cosine = row_cosines(embeddings, reference)
    return {"max_abs_diff": float(np.abs(embeddings - reference).max()), "mean_cosine": float(cosine.mean()),
            "min_cosine": float(cosine.min())}


def meets(result: dict[str, float], target: tuple[float | None, float | None]) -> bool:
    """Whether a `parity` result meets a `(max abs diff, mean cosine)` target (NaN never does)."""
    max_abs_diff, mean_cosine = target
    return ((max_abs_diff is None or result["max_abs_diff"] <= max_abs_diff)
            and (mean_cosine is None or result["mean_cosine"] >= mean_cosine)
            and np.isfinite(list(result.values())).all())


def export_all(
    model: HACNN,
    out_dir: str | os.PathLike,
    formats: Iterable[str] = FORMATS,
    calibration_images: np.ndarray | None = None,
    check_images: np.ndarray | None = None,
    saved_model: str | os.PathLike | None = None,
    saved_model_options: Mapping[str, Any] | None = None,
) -> dict[str, pathlib.Path]:
    """Writes each of `formats` to `<out_dir>/<format>-<precision>/` with a `manifest.json` (`write_manifest`),
    converting all from one float32 SavedModel export; returns `{format: folder}`.

    - `saved_model-fp32`, `-bf16`, `-fp16`: `hacnn/1/` (`<model_name>/<version>/`), TF Serving's layout
      (`export_saved_model(precision=...)`, self-checked), for TF Serving or `SavedModelEmbedder`;
    - `tflite-fp32`, `-fp16`, `-dynamic`, `-int8`, `-uint8`: `hacnn.tflite` (batch 1, `convert_tflite`), for LiteRT
      (`TFLiteEmbedder`); `-uint8` is the int8 model taking uint8 pixels (scale 1, zero point 0);
    - `tflite_batch-fp32`: `hacnn.tflite` with a dynamic batch (`convert_tflite(..., batch=None)`);
    - `onnx-fp32`: `hacnn.onnx` (`convert_onnx`, dynamic batch), for ONNX Runtime (`ONNXEmbedder`);
    - `openvino-fp32`: `hacnn.xml` + `hacnn.bin` (`convert_openvino`, float32 weights), for `OpenVINOEmbedder`;
    - `openvino-int8`: the same quantised by NNCF on `calibration_images` (`quantize_openvino`).

    Each format is checked against `model` on `check_images` (default: `calibration_images` when given, else 16
    random pixel images): its embeddings must meet `TARGETS` (float32: max abs diff <= 1e-5, TFLite 1e-4;
    bf16/fp16: mean cosine >= 0.999; int8, uint8 and dynamic-range: mean cosine >= 0.99; OpenVINO at the CPU's
    default inference precision too). The parity goes into the manifest's notes. A folder appears (renamed from a
    staging folder) only once its format has passed; if any format misses its target, the others are still written
    and a `RuntimeError` lists the misses. Existing folders are never overwritten. An export holds a lock on
    `out_dir` (`flock` on the folder) while it runs: a second export into the same folder is refused with a
    `BlockingIOError`, and the staging folder a killed export left there is removed by the next one.

    Args:
        model: the float32 Keras HA-CNN.
        out_dir: the parent folder of the format folders.
        formats: names from `FORMATS`.
        calibration_images: `(N, H, W, 3)` pixels (0..255) of training images, for the `CALIBRATED` formats.
        check_images: `(N, H, W, 3)` held-out pixels for the parity check.
        saved_model: an existing `export_saved_model(model, ...)` version folder to convert from (copied for
            `saved_model-fp32`) instead of exporting one.
        saved_model_options: keyword arguments of every `export_saved_model` call (`model_name`, `version`,
            `warmup_images`, `max_pixels`; default `hacnn`, 1).
    """
    formats = tuple(dict.fromkeys(formats))
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise ValueError(f"unknown formats {unknown}; expected names from {FORMATS}")
    calibrated = [name for name in formats if name in CALIBRATED]
    if calibrated and calibration_images is None:
        raise ValueError(f"{', '.join(calibrated)} need calibration_images (training images, pixels 0..255)")
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} is a file: give a folder (new, or holding other formats) for the format "
                                 "folders")
    if saved_model is not None and not (pathlib.Path(saved_model) / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{saved_model} is not a SavedModel (no saved_model.pb in it): give the "
                                "<model_name>/<version> folder that export_saved_model wrote")
    options = {"model_name": MODEL_NAME, "version": 1, **(saved_model_options or {})}
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(out_dir))
        except RuntimeError:
            raise BlockingIOError(f"{out_dir}: another export is writing into it (it holds its lock): wait for it to "
                                  "end, or export into another folder") from None
        existing = [str(out_dir / name) for name in formats if (out_dir / name).exists()]
        if existing:
            raise FileExistsError(f"{existing} exist: export into a new folder, or leave these formats out")
        remove_partial_dirs(out_dir, (STAGING_PREFIX,))  # of exports that were killed: a live one holds the lock
        return _export_locked(model, out_dir, formats, calibration_images, check_images, saved_model, options)


def _export_locked(model: HACNN, out_dir: pathlib.Path, formats: Sequence[str], calibration_images: np.ndarray | None,
                   check_images: np.ndarray | None, saved_model: str | os.PathLike | None,
                   options: Mapping[str, Any]) -> dict[str, pathlib.Path]:
    """`export_all`'s conversions, checks and renames, in `out_dir` locked by this process."""
    if check_images is None:
        check_images = calibration_images if calibration_images is not None else np.random.default_rng(0).uniform(
            0, 255, (NUM_RANDOM_CHECK_IMAGES, *model.input_size, 3))
    check_images = np.asarray(check_images, np.float32)
    from hacnn_tf.runtime.keras_model import KerasEmbedder

    reference = KerasEmbedder(model)(check_images)
    written, misses = {}, {}
    with tempfile.TemporaryDirectory(prefix=STAGING_PREFIX, dir=out_dir) as scratch:
        scratch = pathlib.Path(scratch)
        source_folder = scratch / "saved_model-fp32"
        if saved_model is None:
            source = export_saved_model(model, source_folder, **options)
        else:
            source = source_folder / options["model_name"] / str(options["version"])
            shutil.copytree(saved_model, source)
        staged = _convert(model, source, scratch, formats, calibration_images, options)
        for name, stage in staged.items():
            results = {}
            for check, make_embedder in stage.embedders.items():
                results[check] = parity(make_embedder()(check_images), reference)
                target = TARGETS[name] if check == name else stage.targets.get(check, HALF_PRECISION_TARGET)
                if not meets(results[check], target):
                    misses[check] = results[check]
            calibration = {"calibration_images": len(calibration_images)} if name in CALIBRATED else {}
            write_manifest(stage.folder, *name.split("-"), stage.input_spec, stage.exporters, stage.model,
                           {**stage.notes, **calibration, "parity": {"images": len(check_images), **results}})
            if not any(check in misses for check in results):
                os.replace(stage.folder, out_dir / name)
                written[name] = out_dir / name
    if misses:
        raise RuntimeError(f"export_all: {sorted(misses)} missed their parity targets against the Keras model "
                           f"({misses}); written: {sorted(written)}")
    return written


def _input_spec(batch: int, model: HACNN, signature: str | None = None, pixels_dtype: str = "float32") -> dict:
    spec = {IMAGES_INPUT: {"dtype": pixels_dtype, "shape": [batch, *model.input_size, 3],
                           "values": "RGB pixels 0..255 as decode_and_resize gives them, not normalised"},
            "output": {OUTPUT: {"dtype": "float32", "shape": [batch, model.embedding_dim],
                                "values": "global and local features, each L2-normalised"}}}
    if pixels_dtype == "uint8":
        spec[IMAGES_INPUT]["quantization"] = {"scale": 1.0, "zero_point": 0}
        spec[IMAGES_INPUT]["values"] = ("RGB pixels 0..255 as uint8: decode_and_resize's values rounded, or the "
                                        "decoded image's own bytes")
    if signature is not None:
        spec[IMAGES_INPUT]["signature"] = signature
        spec[BYTES_INPUT] = {"dtype": "string", "shape": [-1], "signature": SERVING_SIGNATURE,
                             "values": "encoded JPEG/PNG/BMP/GIF files, decoded and resized in the graph"}
    return spec


def _convert(model: HACNN, source: pathlib.Path, scratch: pathlib.Path, formats: Sequence[str],
             calibration_images: np.ndarray | None, saved_model_options: Mapping[str, Any]) -> dict[str, _Staged]:
    """Every format of `formats` converted from the float32 SavedModel `source` into a staging folder in
    `scratch` (the other SavedModels exported with `saved_model_options`)."""
    from hacnn_tf.runtime.saved_model import SavedModelEmbedder

    base_versions = {"hacnn-tf": hacnn_tf.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}
    staged = {}
    for name in formats:
        if not name.startswith("saved_model-"):
            continue
        precision = name.split("-")[1]
        folder = scratch / name
        version = source if precision == "fp32" else export_saved_model(model, folder, **saved_model_options,
                                                                         precision=precision)
        model_path = f"{saved_model_options['model_name']}/{saved_model_options['version']}"
        staged[name] = _Staged(folder, model_path, _input_spec(-1, model, IMAGES_SIGNATURE), base_versions,
                               {name: lambda v=version: SavedModelEmbedder(v)})
    for prefix, batch in (("tflite-", 1), ("tflite_batch-", None)):
        tflite = [name for name in formats if name.startswith(prefix)]
        if not tflite:
            continue
        from hacnn_tf.export.tflite import FLOAT_LAYERS, convert_tflite_variants
        from hacnn_tf.runtime.tflite import TFLiteEmbedder

        outputs = {name.split("-")[1]: scratch / name / "hacnn.tflite" for name in tflite}
        paths = convert_tflite_variants(source, outputs, calibration_images, batch)
        for name in tflite:
            quantization = name.split("-")[1]
            path = paths[quantization]
            spec = _input_spec(batch or -1, model, pixels_dtype="uint8" if quantization == "uint8" else "float32")
            notes = {"float_layers": list(FLOAT_LAYERS)} if quantization in ("int8", "uint8") else {}
            staged[name] = _Staged(path.parent, path.name, spec, base_versions,
                                   {name: lambda p=path: TFLiteEmbedder(p)}, notes)
    if "onnx-fp32" in formats:
        import onnx
        import tf2onnx

        from hacnn_tf.export.onnx import DEFAULT_OPSET, convert_onnx
        from hacnn_tf.runtime.onnx import ONNXEmbedder

        path = convert_onnx(source, scratch / "onnx-fp32" / "hacnn.onnx")
        staged["onnx-fp32"] = _Staged(
            path.parent, path.name, _input_spec(-1, model),
            {**base_versions, "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__},
            {"onnx-fp32": lambda p=path: ONNXEmbedder(p)}, {"opset": DEFAULT_OPSET})
    openvino_formats = [name for name in formats if name.startswith("openvino-")]
    if openvino_formats:
        import openvino

        from hacnn_tf.export.openvino import convert_openvino, quantize_openvino
        from hacnn_tf.runtime.openvino import OpenVINOEmbedder

        versions = {**base_versions, "openvino": openvino.get_version()}
        float_ir = convert_openvino(source, scratch / "openvino-fp32")
        for name in openvino_formats:
            path, exporters = float_ir, versions
            if name == "openvino-int8":
                import nncf

                path = quantize_openvino(float_ir, scratch / name, calibration_images)
                exporters = {**versions, "nncf": nncf.__version__}
            default = OpenVINOEmbedder(path)
            embedders = {name: lambda p=path: OpenVINOEmbedder(p, inference_precision="f32")}
            if default.inference_precision != "f32":
                embedders[f"{name}@{default.inference_precision}"] = lambda d=default: d
            staged[name] = _Staged(
                path.parent, path.name, _input_spec(-1, model), exporters, embedders,
                {"cpu_default_inference_precision": default.inference_precision},
                {f"{name}@{default.inference_precision}": INT8_TARGET} if name == "openvino-int8" else {})
    return {name: staged[name] for name in formats}
