"""The calibrated and batched formats of `export_all` on the tiny model: TFLite int8 with uint8 pixels in, a TFLite
file with a dynamic batch, and OpenVINO int8 quantised by NNCF, each against the Keras model and the format it was
derived from."""

import json

import numpy as np
import openvino as ov
import pytest

from hacnn_tf.data.pipeline import load_pixels
from hacnn_tf.export import export_all
from hacnn_tf.export.all import parity
from hacnn_tf.manifest import MANIFEST, verify_manifest
from hacnn_tf.runtime import load_embedder
from hacnn_tf.runtime.keras_model import KerasEmbedder
from hacnn_tf.runtime.openvino import OpenVINOEmbedder
from hacnn_tf.runtime.tflite import TFLiteEmbedder

FORMATS = ("tflite-int8", "tflite-uint8", "tflite_batch-fp32", "openvino-int8")


@pytest.fixture(scope="module")
def calibrated(export_model, exported_saved_model, tiny_synthetic, tmp_path_factory):
    calibration = load_pixels(tiny_synthetic.train, export_model.input_size)
    return export_all(
        export_model,
        tmp_path_factory.mktemp("calibrated"),
        FORMATS,
        calibration_images=calibration,
        saved_model=exported_saved_model,
    )


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(21).uniform(0, 255, size=(5, 64, 32, 3)).astype("float32")


def manifest(folder):
    return json.loads((folder / MANIFEST).read_text())


def test_every_format_meets_its_target_and_says_what_it_takes(calibrated):
    assert set(calibrated) == set(FORMATS)
    for name, folder in calibrated.items():
        written = verify_manifest(folder)
        assert (written["format"], written["precision"]) == tuple(name.split("-"))
        checks = {check: result for check, result in written["notes"]["parity"].items() if check != "images"}
        assert name in checks and all(r["mean_cosine"] >= 0.99 for r in checks.values()), (name, checks)
    assert manifest(calibrated["tflite_batch-fp32"])["notes"]["parity"]["tflite_batch-fp32"]["max_abs_diff"] <= 1e-4
    uint8 = manifest(calibrated["tflite-uint8"])["input"]
    assert uint8["images"]["dtype"] == "uint8" and uint8["images"]["shape"] == [1, 64, 32, 3]
    assert uint8["images"]["quantization"] == {"scale": 1.0, "zero_point": 0}
    assert uint8["output"]["embedding"]["dtype"] == "float32"
    assert manifest(calibrated["tflite-uint8"])["notes"]["float_layers"] == [
        "hard_attention",
        "region_sampler1",
        "region_sampler2",
        "region_sampler3",
    ]
    assert manifest(calibrated["tflite_batch-fp32"])["input"]["images"]["shape"] == [-1, 64, 32, 3]
    assert manifest(calibrated["openvino-int8"])["exporters"]["nncf"]


def test_uint8_input_is_the_pixels_themselves(calibrated, pixels):
    """The uint8 file on integer pixels computes what the int8 file computes on the same pixels as float32."""
    uint8 = TFLiteEmbedder(calibrated["tflite-uint8"] / "hacnn.tflite")
    int8 = TFLiteEmbedder(calibrated["tflite-int8"] / "hacnn.tflite")
    assert uint8.input["dtype"] == np.uint8 and uint8.input["quantization"] == (1.0, 0)
    assert uint8.output["dtype"] == np.float32
    integer = np.round(pixels)
    np.testing.assert_allclose(uint8(integer.astype(np.uint8)), int8(integer), atol=1e-6)
    np.testing.assert_array_equal(uint8(pixels), uint8(integer))  # float pixels are rounded to the nearest uint8
    # The same partitions: the uint8 -> int8 requantisation at the input adds none.
    delegates = [[d["op_name"] for d in e.interpreter._get_ops_details()].count("DELEGATE") for e in (uint8, int8)]
    assert delegates[0] == delegates[1] <= 7


def test_batch_file_runs_any_batch_as_the_batch_one_files_do(calibrated, export_model, pixels):
    path = calibrated["tflite_batch-fp32"] / "hacnn.tflite"
    embedder = load_embedder(path, batch_size=2)  # 5 images: invokes of 2, 2, 1 (resized each time it changes)
    assert type(embedder) is TFLiteEmbedder and embedder.dynamic_batch
    assert list(embedder.input["shape_signature"]) == [-1, 64, 32, 3]
    reference = KerasEmbedder(export_model)(pixels)
    np.testing.assert_allclose(embedder(pixels), reference, atol=1e-4)
    np.testing.assert_allclose(TFLiteEmbedder(path, batch_size=64)(pixels), reference, atol=1e-4)
    np.testing.assert_allclose(np.stack([embedder.embed_one(image) for image in pixels]), reference, atol=1e-4)
    assert embedder(pixels[:0]).shape == (0, 64)
    with pytest.raises(ValueError, match=r"takes pixels of shape \(N, 64, 32, 3\); got \(5, 32, 64, 3\)"):
        embedder(pixels.transpose(0, 2, 1, 3))


def test_openvino_int8_is_quantised_and_close_to_keras(calibrated, export_model, tiny_synthetic):
    xml = calibrated["openvino-int8"] / "hacnn.xml"
    ops = ov.Core().read_model(str(xml)).get_ops()

    def source(op, index):
        return op.input_value(index).get_node()

    # Every convolution's weights are int8 constants (dequantised by a Convert and a Multiply), its input quantised
    # by FakeQuantize ops; the sampler's matmuls of two activations stay float.
    convolutions = [op for op in ops if op.get_type_name() == "Convolution"]
    int8_weights = [op for op in convolutions if source(source(source(op, 1), 0), 0).get_element_type() == ov.Type.i8]
    assert len(convolutions) == len(int8_weights) == 70
    assert sum(op.get_type_name() == "FakeQuantize" for op in ops) >= 70
    sampler = [op for op in ops if op.get_type_name() == "MatMul" and "region_sampler" in op.get_friendly_name()]
    assert len(sampler) == 6 and not any(
        source(op, i).get_type_name() == "FakeQuantize" for op in sampler for i in (0, 1)
    )
    held_out = load_pixels(tiny_synthetic.query, export_model.input_size)  # images like the calibration's, unseen
    reference = KerasEmbedder(export_model)(held_out)
    for precision in ("f32", None):
        result = parity(OpenVINOEmbedder(xml, inference_precision=precision)(held_out), reference)
        assert result["mean_cosine"] >= 0.99, (precision, result)
