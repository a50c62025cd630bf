"""The ONNX Runtime and OpenVINO embedders behind the `Embedder` protocol, reading their own files, against the
Keras model."""

import threading

import numpy as np
import pytest

from hacnn_tf.runtime import Embedder, load_embedder
from hacnn_tf.runtime.keras_model import KerasEmbedder
from hacnn_tf.runtime.onnx import ONNXEmbedder
from hacnn_tf.runtime.openvino import OpenVINOEmbedder


@pytest.fixture(scope="module")
def files(exported_formats):
    return {
        "onnx": exported_formats["onnx-fp32"] / "hacnn.onnx",
        "openvino": exported_formats["openvino-fp32"] / "hacnn.xml",
    }


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(12).uniform(0, 255, size=(5, 64, 32, 3)).astype("float32")


def test_load_embedder_recognises_onnx_and_openvino(files, export_model, pixels):
    reference = KerasEmbedder(export_model)(pixels)
    for path, cls, kwargs in (
        (files["onnx"], ONNXEmbedder, {}),
        (files["openvino"], OpenVINOEmbedder, {"inference_precision": "f32"}),
    ):
        embedder = load_embedder(path, num_threads=2, batch_size=2, **kwargs)  # 5 images: batches of 2, 2, 1
        assert type(embedder) is cls and isinstance(embedder, Embedder)
        assert embedder.input_size == (64, 32) and embedder.feature_dim == 64
        np.testing.assert_allclose(embedder(pixels), reference, atol=1e-5, err_msg=str(path))
        np.testing.assert_allclose(
            embedder(pixels.astype(np.uint8)), KerasEmbedder(export_model)(pixels.astype(np.uint8)), atol=1e-5
        )
        assert embedder(pixels[:0]).shape == (0, 64)
        with pytest.raises(ValueError, match=r"takes pixels of shape \(N, 64, 32, 3\); got \(5, 32, 64, 3\)"):
            embedder(pixels.transpose(0, 2, 1, 3))


def test_openvino_refuses_an_unknown_precision(files):
    with pytest.raises(ValueError, match="inference_precision must be None or one of"):
        OpenVINOEmbedder(files["openvino"], inference_precision="int4")


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_one_embedder_shared_by_threads(files, pixels, runtime):
    embedder = load_embedder(files[runtime], batch_size=1)
    expected = embedder(pixels)
    results, errors = {}, []

    def work(index):
        try:
            results[index] = [embedder(pixels) for _ in range(5)]
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for outputs in results.values():
        for output in outputs:
            np.testing.assert_array_equal(output, expected)
