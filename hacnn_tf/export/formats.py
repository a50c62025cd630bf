"""The registry of deployment formats: one `ExportFormat` per `<family>-<precision>` folder that `export_all` writes,
each of one `ExportFamily` (the converter that writes it, the runtime embedder that reads it, the package extras
both need).

`export_all`, `hacnn-tf export`, the format benchmark and the docs' format table all read `REGISTRY`, so a format is
added in one place (docs/architecture.md#adding-an-export-format). Nothing heavy is imported here: converters and
embedders are named as `"module:attribute"` and imported only when used, so that the command line can list the
formats without TensorFlow or a runtime installed.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from typing import Any

# The model's name in every exported folder: `hacnn/<version>/` of a SavedModel, `hacnn.tflite`, `hacnn.onnx`,
# `hacnn.xml` + `hacnn.bin`.
MODEL_NAME = "hacnn"

# Parity of a format's embeddings with the Keras model's on the check images: `(max abs diff, mean cosine)` bounds,
# None where not bounded. OpenVINO is also checked at the CPU's default inference precision (bf16 on CPUs with
# AVX512-BF16 or AMX): float32 IR against the half-precision bound, int8 against the int8 bound.
Target = tuple[float | None, float | None]
FLOAT32_TARGET: Target = (1e-5, None)
TFLITE_FLOAT32_TARGET: Target = (1e-4, None)
HALF_PRECISION_TARGET: Target = (None, 0.999)
INT8_TARGET: Target = (None, 0.99)


def _resolve(reference: str) -> Any:
    """The attribute `"module:attribute"` names, its module imported now."""
    module, attribute = reference.split(":")
    return getattr(importlib.import_module(module), attribute)


@dataclasses.dataclass(frozen=True)
class ExportFamily:
    """Formats written by one converter and read by one runtime.

    Attributes:
        name: the part of a format's name before the precision (`tflite` in `tflite-int8`).
        converter: `"module:function"` of the converter in `hacnn_tf.export.converters`, called with a `Conversion`
            and the family's formats to write: returns `{format name: Staged}`.
        embedder: `"module:Class"` of the `hacnn_tf.runtime` embedder that runs the written model.
        runs_with: who consumes the folder (the docs' table).
        extras: the package extras (`hacnn_tf.errors.EXTRA_MODULES`) converting and checking it needs.
        each_alone: each format converted on its own (each SavedModel precision is a new export) rather than the
            family's formats in one conversion (the TFLite variants from one re-export, the OpenVINO IRs from one IR).
        batch: the batch the written model takes, -1 for any.
    """

    name: str
    converter: str
    embedder: str
    runs_with: str
    extras: tuple[str, ...] = ()
    each_alone: bool = False
    batch: int = -1

    def convert(self, conversion: Any, formats: Sequence[ExportFormat]) -> Mapping[str, Any]:
        """`{name: Staged}` of `formats` (this family's) converted by `converter` (`hacnn_tf.export.converters`)."""
        return _resolve(self.converter)(conversion, formats)

    def load(self) -> type:
        """The embedder class (imported now)."""
        return _resolve(self.embedder)


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """One folder `export_all` writes, `<family>-<precision>/`.

    Attributes:
        family: its `ExportFamily`.
        precision: of its weights and arithmetic (`fp32`, `bf16`, `fp16`, `dynamic`: int8 weights and float
            activations, `int8`, `uint8`: int8 taking uint8 pixels).
        holds: what its folder holds (the docs' table).
        target: its parity target against the Keras model (`Target`).
        images: the dtype of the pixels its model takes.
        calibrated: quantised on calibration images (training images: `export_all(calibration_images=...)`).
        cpu_default_target: where the runtime computes in another precision by default on some CPUs (OpenVINO's
            bf16 on CPUs with AMX or AVX512-BF16), the target of that check too (`<name>@<precision>`).
    """

    family: ExportFamily
    precision: str
    holds: str
    target: Target
    images: str = "float32"
    calibrated: bool = False
    cpu_default_target: Target | None = None

    @property
    def name(self) -> str:
        return f"{self.family.name}-{self.precision}"

    def load(self) -> type:
        """The embedder class that runs this format's model (imported now)."""
        return self.family.load()


SAVED_MODEL = ExportFamily(
    "saved_model",
    "hacnn_tf.export.converters:convert_saved_models",
    "hacnn_tf.runtime.saved_model:SavedModelEmbedder",
    "TF Serving, `SavedModelEmbedder`",
    each_alone=True,
)
TFLITE = ExportFamily(
    "tflite",
    "hacnn_tf.export.converters:convert_tflite_models",
    "hacnn_tf.runtime.tflite:TFLiteEmbedder",
    "LiteRT, `TFLiteEmbedder`",
    ("litert",),
    batch=1,
)
TFLITE_BATCH = ExportFamily(
    "tflite_batch",
    "hacnn_tf.export.converters:convert_tflite_models",
    "hacnn_tf.runtime.tflite:TFLiteEmbedder",
    "LiteRT, `TFLiteEmbedder`",
    ("litert",),
)
ONNX = ExportFamily(
    "onnx",
    "hacnn_tf.export.converters:convert_onnx_model",
    "hacnn_tf.runtime.onnx:ONNXEmbedder",
    "ONNX Runtime, `ONNXEmbedder`",
    ("onnx",),
)
OPENVINO = ExportFamily(
    "openvino",
    "hacnn_tf.export.converters:convert_openvino_models",
    "hacnn_tf.runtime.openvino:OpenVINOEmbedder",
    "OpenVINO, `OpenVINOEmbedder`",
    ("openvino",),
)
# The order in which `export_all` converts the families.
FAMILIES = (SAVED_MODEL, TFLITE, TFLITE_BATCH, ONNX, OPENVINO)

_SAVED_MODEL = f"`{MODEL_NAME}/<version>/` (TF Serving's layout, self-checked)"
_TFLITE = f"`{MODEL_NAME}.tflite` (batch 1)"
_TFLITE_INT8 = f"`{MODEL_NAME}.tflite` (batch 1, int8 with float islands)"
_IR = f"`{MODEL_NAME}.xml` + `{MODEL_NAME}.bin`"
_FORMATS = (
    ExportFormat(SAVED_MODEL, "fp32", _SAVED_MODEL, FLOAT32_TARGET),
    ExportFormat(SAVED_MODEL, "bf16", _SAVED_MODEL, HALF_PRECISION_TARGET),
    ExportFormat(SAVED_MODEL, "fp16", _SAVED_MODEL, HALF_PRECISION_TARGET),
    ExportFormat(TFLITE, "fp32", _TFLITE, TFLITE_FLOAT32_TARGET),
    ExportFormat(TFLITE, "fp16", f"`{MODEL_NAME}.tflite` (batch 1, fp16 weights)", HALF_PRECISION_TARGET),
    ExportFormat(TFLITE, "dynamic", f"`{MODEL_NAME}.tflite` (batch 1, int8 weights)", INT8_TARGET),
    ExportFormat(TFLITE, "int8", _TFLITE_INT8, INT8_TARGET, calibrated=True),
    ExportFormat(TFLITE, "uint8", _TFLITE_INT8, INT8_TARGET, images="uint8", calibrated=True),
    ExportFormat(TFLITE_BATCH, "fp32", f"`{MODEL_NAME}.tflite` (dynamic batch)", TFLITE_FLOAT32_TARGET),
    ExportFormat(ONNX, "fp32", f"`{MODEL_NAME}.onnx` (dynamic batch)", FLOAT32_TARGET),
    ExportFormat(
        OPENVINO, "fp32", f"{_IR} (float32 weights)", FLOAT32_TARGET, cpu_default_target=HALF_PRECISION_TARGET
    ),
    ExportFormat(OPENVINO, "int8", f"{_IR} (NNCF int8)", INT8_TARGET, calibrated=True, cpu_default_target=INT8_TARGET),
)
# `{name: ExportFormat}` of every format, in `FAMILIES`' order.
REGISTRY: dict[str, ExportFormat] = {fmt.name: fmt for fmt in _FORMATS}

# What the rest of the package reads from the registry.
FORMATS = tuple(REGISTRY)
CALIBRATED = tuple(name for name, fmt in REGISTRY.items() if fmt.calibrated)
# `{format: parity target}`, read by `export_all` at each check.
TARGETS: dict[str, Target] = {name: fmt.target for name, fmt in REGISTRY.items()}
# The batch-1 TFLite variants taking float pixels: what `hacnn-tf export --format tflite` and the demo export.
TFLITE_VARIANTS = tuple(fmt.precision for fmt in _FORMATS if fmt.family is TFLITE and fmt.images == "float32")


def _bound(target: Target) -> str:
    max_abs_diff, mean_cosine = target
    bounds = [f"max abs diff <= {max_abs_diff:.0e}".replace("e-0", "e-")] if max_abs_diff is not None else []
    return ", ".join([*bounds, *([f"mean cosine >= {mean_cosine:g}"] if mean_cosine is not None else [])])


def formats_table() -> str:
    """The markdown table of `REGISTRY`, one row per format (its folder, what it holds, the pixels it takes, whether
    it is calibrated, the package extra it needs, its parity target, what runs it), as README.md and
    docs/deployment.md hold it."""
    lines = [
        "| folder | holds | pixels in | calibrated | extra | parity target (vs Keras) | runs with |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, fmt in REGISTRY.items():
        target = _bound(fmt.target)
        if fmt.cpu_default_target is not None:
            target += f"; {_bound(fmt.cpu_default_target)} at the CPU's default precision"
        pixels = f"{fmt.images} `[{fmt.family.batch}, H, W, 3]`"
        if fmt.images == "uint8":
            pixels += ", scale 1, zero point 0"
        cells = (
            f"`{name}`",
            fmt.holds,
            pixels,
            "yes" if fmt.calibrated else "no",
            ", ".join(fmt.family.extras) or "-",
            target,
            fmt.family.runs_with,
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
