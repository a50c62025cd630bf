"""OpenVINO IR export: float32 weights, read back by OpenVINO's CPU plugin against the Keras model, at float32 and
at the CPU's default inference precision."""

import numpy as np
import openvino as ov

from hacnn_tf.export.all import parity
from hacnn_tf.runtime.keras_model import KerasEmbedder
from hacnn_tf.runtime.openvino import OpenVINOEmbedder


def test_ir_has_dynamic_batch_and_float32_weights(exported_formats):
    folder = exported_formats["openvino-fp32"]
    assert {p.name for p in folder.iterdir()} == {"hacnn.xml", "hacnn.bin", "manifest.json"}
    model = ov.Core().read_model(str(folder / "hacnn.xml"))
    (images,), (embedding,) = model.inputs, model.outputs
    assert images.get_any_name() == "images" and embedding.get_any_name() == "embedding"
    assert str(images.get_partial_shape()) == "[?,64,32,3]" and str(embedding.get_partial_shape()) == "[?,64]"
    assert images.get_element_type() == embedding.get_element_type() == ov.Type.f32
    weights = {
        op.get_element_type()
        for op in model.get_ops()
        if op.get_type_name() == "Constant" and op.get_element_type().is_real()
    }
    assert weights == {ov.Type.f32}  # not compressed to fp16 (openvino.save_model's default)


def test_float32_equals_keras_and_default_precision_is_close(exported_formats, export_model):
    xml = exported_formats["openvino-fp32"] / "hacnn.xml"
    pixels = np.random.default_rng(8).uniform(0, 255, size=(6, 64, 32, 3)).astype("float32")
    reference = KerasEmbedder(export_model)(pixels)
    f32 = OpenVINOEmbedder(xml, inference_precision="f32", batch_size=4)
    assert f32.inference_precision == "f32"
    np.testing.assert_allclose(f32(pixels), reference, atol=1e-5)
    default = OpenVINOEmbedder(xml)
    # The CPU plugin's own choice: bf16 where the CPU computes it natively (AVX512-BF16, AMX; this machine), else f32.
    cpu_bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert default.inference_precision == ("bf16" if cpu_bf16 else "f32")
    result = parity(default(pixels), reference)
    assert result["mean_cosine"] >= 0.999 and result["min_cosine"] >= 0.99, result
