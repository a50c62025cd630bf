"""ONNX export: the `embed_images` signature through tf2onnx, read back by ONNX Runtime against the Keras model."""

import collections

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hacnn_tf.export import convert_onnx
from hacnn_tf.runtime.keras_model import KerasEmbedder


@pytest.fixture(scope="module")
def onnx_file(exported_formats):
    return exported_formats["onnx-fp32"] / "hacnn.onnx"


def test_graph_declares_a_dynamic_batch_and_standard_ops(onnx_file):
    model = onnx.load(str(onnx_file))
    onnx.checker.check_model(model, full_check=True)
    assert {opset.domain: opset.version for opset in model.opset_import}[""] >= 17
    (images,), (embedding,) = model.graph.input, model.graph.output
    assert images.name == "images" and embedding.name == "embedding"
    assert images.type.tensor_type.elem_type == embedding.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = [d.dim_param or d.dim_value for d in images.type.tensor_type.shape.dim]
    assert dims == ["batch", 64, 32, 3]
    assert [d.dim_param or d.dim_value for d in embedding.type.tensor_type.shape.dim] == ["batch", 64]
    ops = collections.Counter(node.op_type for node in model.graph.node)
    # Only default-domain ONNX ops (no TensorFlow fallbacks); every conv of the network is there, and the three
    # Inception-A average pools as depthwise (grouped) convolutions.
    assert {node.domain for node in model.graph.node} <= {""}
    groups = [
        next((attribute.i for attribute in node.attribute if attribute.name == "group"), 1)
        for node in model.graph.node
        if node.op_type == "Conv"
    ]
    assert ops["Conv"] == 73 and sum(group > 1 for group in groups) == 3, groups


def test_onnx_runtime_equals_keras_for_any_batch(onnx_file, export_model):
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(7).uniform(0, 255, size=(5, 64, 32, 3)).astype("float32")
    reference = KerasEmbedder(export_model)(pixels)
    for count in (5, 1):
        (output,) = session.run(["embedding"], {"images": pixels[:count]})
        np.testing.assert_allclose(output, reference[:count], atol=1e-5)
    (empty,) = session.run(["embedding"], {"images": pixels[:0]})
    assert empty.shape == (0, 64)


def test_opset_below_17_is_refused(exported_saved_model, tmp_path):
    with pytest.raises(ValueError, match="opset must be at least 17"):
        convert_onnx(exported_saved_model, tmp_path / "x.onnx", opset=13)
    assert not list(tmp_path.iterdir())
