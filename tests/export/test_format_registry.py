"""The format registry (`hacnn_tf.export.formats`): the names, calibration and parity targets the rest of the package
reads are the registry's, each format's embedder and converter exist, and the docs hold its table."""

import importlib
import pathlib

import pytest

from hacnn_tf.errors import missing_extras
from hacnn_tf.export import all as export_all_module
from hacnn_tf.export import formats
from hacnn_tf.export.tflite import QUANTIZATIONS

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_registry_holds_the_formats_export_all_writes():
    assert formats.FORMATS == (
        "saved_model-fp32",
        "saved_model-bf16",
        "saved_model-fp16",
        "tflite-fp32",
        "tflite-fp16",
        "tflite-dynamic",
        "tflite-int8",
        "tflite-uint8",
        "tflite_batch-fp32",
        "onnx-fp32",
        "openvino-fp32",
        "openvino-int8",
    )
    assert formats.CALIBRATED == ("tflite-int8", "tflite-uint8", "openvino-int8")
    assert formats.TFLITE_VARIANTS == ("fp32", "fp16", "dynamic", "int8")
    assert all(name == fmt.name == f"{fmt.family.name}-{fmt.precision}" for name, fmt in formats.REGISTRY.items())


def test_export_all_reads_the_registry():
    assert export_all_module.FORMATS == tuple(formats.REGISTRY)
    assert export_all_module.CALIBRATED == tuple(n for n, f in formats.REGISTRY.items() if f.calibrated)
    assert export_all_module.TARGETS == {n: f.target for n, f in formats.REGISTRY.items()}
    assert export_all_module.TARGETS is formats.TARGETS  # a test's patch of one is seen by the other


def test_targets_bound_each_precision():
    bounds = {name: fmt.target for name, fmt in formats.REGISTRY.items()}
    assert bounds["saved_model-fp32"] == bounds["onnx-fp32"] == bounds["openvino-fp32"] == (1e-5, None)
    assert bounds["tflite-fp32"] == bounds["tflite_batch-fp32"] == (1e-4, None)
    assert {bounds[n] for n in ("saved_model-bf16", "saved_model-fp16", "tflite-fp16")} == {(None, 0.999)}
    assert {bounds[n] for n in ("tflite-dynamic", *formats.CALIBRATED)} == {(None, 0.99)}


def test_tflite_precisions_are_the_converters():
    assert {f.precision for f in formats.REGISTRY.values() if f.family is formats.TFLITE} == set(QUANTIZATIONS)


@pytest.mark.parametrize("name", formats.FORMATS)
def test_each_format_names_an_embedder_and_a_converter_that_exist(name):
    fmt = formats.REGISTRY[name]
    module, cls = fmt.family.embedder.split(":")
    # The test extra installs every runtime: a missing one is a broken test environment, not a reason to skip.
    assert not missing_extras(*fmt.family.extras), f"{name} needs the {fmt.family.extras} extras"
    assert fmt.load().__name__ == cls and fmt.load().__module__ == module
    module, function = fmt.family.converter.split(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert fmt.family in formats.FAMILIES


@pytest.mark.parametrize("page", ["README.md", "docs/deployment.md"])
def test_the_docs_hold_the_registry_table(page):
    assert formats.formats_table() in (ROOT / page).read_text(encoding="utf-8")


def test_the_table_has_a_row_per_format_with_its_bounds():
    rows = formats.formats_table().splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [f"| `{name}`" for name in formats.FORMATS]
    openvino_fp32 = rows[formats.FORMATS.index("openvino-fp32")]
    assert "max abs diff <= 1e-5; mean cosine >= 0.999 at the CPU's default precision" in openvino_fp32
    assert (
        "| uint8 `[1, H, W, 3]`, scale 1, zero point 0 | yes | litert |" in rows[formats.FORMATS.index("tflite-uint8")]
    )


def test_only_openvino_is_also_checked_at_the_cpus_default_precision():
    checked = {n: f.cpu_default_target for n, f in formats.REGISTRY.items() if f.cpu_default_target is not None}
    assert checked == {"openvino-fp32": formats.HALF_PRECISION_TARGET, "openvino-int8": formats.INT8_TARGET}
