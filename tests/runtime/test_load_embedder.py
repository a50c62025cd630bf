"""`load_embedder` recognises each format; every `Embedder` gives the Keras model's embeddings on the same pixels."""

import numpy as np
import pytest

from hacnn_tf.export import convert_tflite
from hacnn_tf.runtime import Embedder, load_embedder
from hacnn_tf.runtime.keras_model import KerasEmbedder
from hacnn_tf.runtime.saved_model import SavedModelEmbedder
from hacnn_tf.runtime.tflite import TFLiteEmbedder


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(5).uniform(0, 255, size=(5, 64, 32, 3)).astype("float32")


@pytest.fixture(scope="module")
def keras_file(export_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    export_model.save(path)
    return path


@pytest.fixture(scope="module")
def tflite_file(exported_saved_model, tmp_path_factory):
    return convert_tflite(exported_saved_model, tmp_path_factory.mktemp("tflite") / "model.tflite", "fp32")


def test_each_format_loads_as_its_embedder_and_equals_keras(export_model, keras_file, exported_saved_model,
                                                            tflite_file, pixels):
    reference = KerasEmbedder(export_model, batch_size=2)(pixels)
    for path, cls, atol in ((keras_file, KerasEmbedder, 1e-6), (exported_saved_model, SavedModelEmbedder, 1e-5),
                            (tflite_file, TFLiteEmbedder, 1e-4)):
        embedder = load_embedder(path)
        assert type(embedder) is cls and isinstance(embedder, Embedder)
        assert embedder.input_size == (64, 32)
        np.testing.assert_allclose(embedder(pixels), reference, atol=atol, err_msg=str(path))
        assert embedder(pixels[:0]).shape == (0, 64)
    norms = np.linalg.norm(reference.reshape(5, 2, 32), axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)  # each branch L2-normalised


def test_wrong_pixels_and_unknown_files_are_named(exported_saved_model, tmp_path, pixels):
    embedder = load_embedder(exported_saved_model)
    with pytest.raises(ValueError, match=r"takes pixels of shape \(N, 64, 32, 3\); got \(5, 32, 64, 3\)"):
        embedder(pixels.transpose(0, 2, 1, 3))
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown model format '.bin'"):
        load_embedder(tmp_path / "model.bin")
    with pytest.raises(FileNotFoundError, match="nothere.tflite"):
        load_embedder(tmp_path / "nothere.tflite")
    with pytest.raises(ValueError, match="without saved_model.pb"):
        load_embedder(tmp_path)
