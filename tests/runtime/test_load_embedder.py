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


def test_each_format_loads_as_its_embedder_and_equals_keras(
    export_model, keras_file, exported_saved_model, tflite_file, pixels
):
    reference = KerasEmbedder(export_model, batch_size=2)(pixels)
    for path, cls, atol in (
        (keras_file, KerasEmbedder, 1e-6),
        (exported_saved_model, SavedModelEmbedder, 1e-5),
        (tflite_file, TFLiteEmbedder, 1e-4),
    ):
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


def test_an_export_format_folder_loads_the_model_its_manifest_names(tflite_file, tmp_path, pixels):
    """`OUT/tflite-fp32` (what `export_all` writes) is read through its manifest: the same embedder and embeddings as
    the file it names; a folder neither a SavedModel nor a format folder is refused naming both."""
    import shutil

    from hacnn_tf.errors import CheckpointError
    from hacnn_tf.manifest import write_manifest

    folder = tmp_path / "tflite-fp32"
    folder.mkdir()
    shutil.copy(tflite_file, folder / "hacnn.tflite")
    write_manifest(folder, "tflite", "fp32", {"name": "images"}, {}, model="hacnn.tflite")
    embedder = load_embedder(folder)
    assert type(embedder) is TFLiteEmbedder and embedder.path == folder / "hacnn.tflite"
    np.testing.assert_array_equal(embedder(pixels), load_embedder(tflite_file)(pixels))
    with pytest.raises(
        CheckpointError,
        match="without saved_model.pb or manifest.json.*give one of the export format folders it holds: tflite-fp32",
    ):
        load_embedder(tmp_path)
    (folder / "manifest.json").write_text('{"format": "tflite"}')
    with pytest.raises(CheckpointError, match=r"tflite-fp32/manifest.json: names no model to load"):
        load_embedder(folder)


@pytest.mark.parametrize("suffix", [".tflite", ".onnx", ".xml"])
def test_a_file_that_is_no_model_of_its_suffix_is_one_line_naming_it(tmp_path, suffix):
    """A truncated or foreign file given directly (no manifest around it to check) was the runtime parser's
    traceback (`The model is not a valid Flatbuffer buffer`, protobuf's `DecodeError`); now a `CheckpointError`."""
    from hacnn_tf.errors import UserError

    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"TFL3 but cut short, or a text file\n" * 3)
    with pytest.raises(UserError) as refused:  # .onnx: the security scan parses it first
        load_embedder(path)
    message = str(refused.value)
    start = f"{path}: not a readable ONNX model (" if suffix == ".onnx" else f"{path}: not a {suffix} model the runtime"
    assert message.startswith(start) and "\n" not in message, message
    assert message.endswith("the file is truncated or not a model: export it again with hacnn-tf export")
