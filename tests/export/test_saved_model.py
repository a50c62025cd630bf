import base64
import io
import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_MODEL

from hacnn_tf import HACNN, normalize_images
from hacnn_tf.data.hacnn_preprocessor import HACNNPreprocessor
from hacnn_tf.data.image_decoding import DEFAULT_MAX_PIXELS
from hacnn_tf.export import export_saved_model
from hacnn_tf.export.saved_model import _bytes_fn, _embedding_fn, check_saved_model
from hacnn_tf.serving import build_predict_request, build_rest_body, parse_predict_response, parse_rest_response
from hacnn_tf.serving.warmup import WARMUP_FILE


@pytest.fixture(scope="module")
def model(export_model):
    return export_model


@pytest.fixture(scope="module")
def image_files(warmup_images):
    return warmup_images


@pytest.fixture(scope="module")
def exported(exported_saved_model):
    return exported_saved_model


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported))


def keras_embedding(model, image_files):
    pixels = tf.stack([HACNNPreprocessor(model.input_size).decode_and_resize(data) for data in image_files])
    return model(normalize_images(pixels), training=False)["embedding"].numpy()


def test_versioned_layout_and_signatures(exported, loaded, model):
    assert exported.name == "3" and exported.parent.name == "hacnn"
    assert {p.name for p in exported.iterdir()} >= {"saved_model.pb", "variables", "assets.extra"}
    assert not [p for p in exported.parent.iterdir() if p.name != "3"]  # no staging folder left behind
    assert set(loaded.signatures) == {"serving_default", "embed_images", "embed_boxes", "embed_boxes_pixels"}
    serve = loaded.signatures["serving_default"]
    assert serve.structured_input_signature[1] == {"image_bytes": tf.TensorSpec((None,), tf.string, "image_bytes")}
    assert serve.structured_outputs["embedding"].shape.as_list() == [None, 64]
    images = loaded.signatures["embed_images"]
    # The real shape is declared (for converters and saved_model_cli); the graph checks it too (see
    # test_wrong_rank_size_or_channels_are_invalid_argument).
    assert images.structured_input_signature[1] == {"images": tf.TensorSpec((None, 64, 32, 3), tf.float32, "images")}
    assert images.structured_outputs["embedding"].dtype == tf.float32


def test_export_has_the_permissions_of_the_umask(exported):
    """The version folder is readable by a server running as another user (not mkdtemp's 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(exported.stat().st_mode) == 0o777 & ~umask
    for path in exported.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o444 & ~umask == 0o444 & ~umask, path


def test_saved_model_cli_lists_the_documented_signatures(exported):
    result = subprocess.run(
        [pathlib.Path(sys.executable).parent / "saved_model_cli", "show", "--dir", str(exported), "--all"],
        capture_output=True,
        text=True,
        check=True,
    )
    for text in (
        "signature_def['serving_default']",
        "signature_def['embed_images']",
        "inputs['image_bytes']",
        "dtype: DT_STRING",
        "inputs['images']",
        "dtype: DT_FLOAT",
        "shape: (-1, 64, 32, 3)",
        "outputs['embedding']",
    ):
        assert text in result.stdout


def test_bytes_path_equals_tensor_path_equals_keras(loaded, model, image_files):
    from_bytes = loaded.signatures["serving_default"](image_bytes=tf.constant(image_files))["embedding"].numpy()
    pixels = tf.stack([HACNNPreprocessor(model.input_size).decode_and_resize(data) for data in image_files])
    from_pixels = loaded.signatures["embed_images"](images=pixels)["embedding"].numpy()
    np.testing.assert_array_equal(from_bytes, from_pixels)
    np.testing.assert_allclose(from_bytes, keras_embedding(model, image_files), atol=1e-5)
    # Dynamic batch: one image alone gives the same row.
    single = loaded.signatures["serving_default"](image_bytes=tf.constant(image_files[:1]))["embedding"].numpy()
    np.testing.assert_allclose(single[0], from_bytes[0], atol=1e-5)


def test_model_that_normalises_itself_is_not_normalised_twice(tmp_path, image_files):
    """A model with `include_preprocessing` takes pixels: the export hands them over as they are."""
    model = HACNN(None, include_preprocessing=True, **TINY_MODEL)
    loaded = tf.saved_model.load(str(export_saved_model(model, tmp_path, "hacnn", 1, check=False)))
    pixels = tf.stack([HACNNPreprocessor(model.input_size).decode_and_resize(data) for data in image_files])
    exported = loaded.signatures["embed_images"](images=pixels)["embedding"].numpy()
    np.testing.assert_allclose(exported, model(pixels, training=False)["embedding"].numpy(), atol=1e-5)
    assert np.abs(exported - model(normalize_images(pixels), training=False)["embedding"].numpy()).max() > 1e-3


def test_self_check_catches_a_different_model(exported):
    other = HACNN(None, **TINY_MODEL)
    with pytest.raises(RuntimeError, match="differs from the Keras model"):
        check_saved_model(exported, other)


def test_existing_version_is_never_overwritten(exported, model):
    with pytest.raises(FileExistsError, match="immutable"):
        export_saved_model(model, exported.parent.parent, "hacnn", 3, check=False)


def test_rest_payload_round_trip(loaded, model, image_files):
    body = json.loads(build_rest_body(image_files[:3]))
    assert body["signature_name"] == "serving_default" and set(body["instances"][0]) == {"b64"}
    # What TF Serving does with the row-format body: b64-decode each instance into the string input.
    decoded = [base64.b64decode(instance["b64"]) for instance in body["instances"]]
    output = loaded.signatures[body["signature_name"]](image_bytes=tf.constant(decoded))["embedding"].numpy()
    response = json.dumps({"predictions": output.tolist()})
    np.testing.assert_allclose(parse_rest_response(response), keras_embedding(model, image_files[:3]), atol=1e-5)
    with pytest.raises(ValueError, match="predictions"):
        parse_rest_response('{"error": "Servable not found"}')


def test_grpc_predict_request_round_trip(loaded, model, image_files):
    from tensorflow_serving.apis import predict_pb2

    request = build_predict_request(image_files[:2], model_name="hacnn")
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # over the wire
    assert request.model_spec.name == "hacnn" and request.model_spec.signature_name == "serving_default"
    inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
    outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
    response = predict_pb2.PredictResponse()
    response.outputs["embedding"].CopyFrom(tf.make_tensor_proto(outputs["embedding"]))
    np.testing.assert_allclose(parse_predict_response(response), keras_embedding(model, image_files[:2]), atol=1e-5)


def test_warmup_records_are_real_prediction_logs(exported, loaded):
    from tensorflow_serving.apis import prediction_log_pb2

    records = list(tf.data.TFRecordDataset(str(exported / WARMUP_FILE)).as_numpy_iterator())
    assert len(records) == 2
    for record, size in zip(records, (1, 8)):
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        images = tf.make_ndarray(request.inputs["image_bytes"])
        assert images.shape == (size,)
        assert loaded.signatures["serving_default"](image_bytes=tf.constant(images))["embedding"].shape == (size, 64)


@pytest.mark.parametrize(
    "payload,message",
    [
        ([b"not an image at all"], "Unknown image file format"),
        ([b""], "empty string"),
    ],
)
def test_bad_bytes_give_invalid_argument(loaded, payload, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["serving_default"](image_bytes=tf.constant(payload))


@pytest.mark.parametrize("shape", [(2, 64, 32, 4), (64, 32, 3), (2, 64, 32, 1), (2, 32, 32, 3), (1, 2, 64, 32, 3)])
def test_wrong_rank_size_or_channels_are_invalid_argument(loaded, shape):
    expected = r"Shape of tensor .* is not compatible with expected shape \[\?,64,32,3\]"
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
        loaded.signatures["embed_images"](images=tf.zeros(shape))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_invalid_argument(loaded, value):
    images = np.full((2, 64, 32, 3), 100.0, np.float32)
    images[1, 5, 7, 2] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite"):
        loaded.signatures["embed_images"](images=tf.constant(images))


def test_empty_batch_gives_an_empty_result(loaded, model, image_files):
    empty = loaded.signatures["embed_images"](images=tf.zeros((0, 64, 32, 3)))["embedding"]
    assert empty.shape == (0, 64) and empty.dtype == tf.float32
    assert loaded.signatures["serving_default"](image_bytes=tf.constant([], tf.string))["embedding"].shape == (0, 64)


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_over_the_pixel_limit_is_refused_before_decoding(loaded):
    """A 5000 x 5000 PNG (25 KB, 75 MB decoded) is over the default 4096 x 4096 limit."""
    bomb = _png(5000, 5000)
    assert 5000 * 5000 > DEFAULT_MAX_PIXELS and len(bomb) < 200_000
    with pytest.raises(tf.errors.InvalidArgumentError, match="limit"):
        loaded.signatures["serving_default"](image_bytes=tf.constant([bomb]))


def test_pixel_limit_is_set_at_export(model):
    serve = tf.function(_bytes_fn(model, _embedding_fn(model), max_pixels=64 * 32), autograph=False)
    assert serve(tf.constant([_png(32, 64)]))["embedding"].shape == (1, 64)
    with pytest.raises(tf.errors.InvalidArgumentError, match="limit"):
        serve(tf.constant([_png(33, 64)]))


def test_docker_image_serves_the_export(tiny_synthetic):
    """Builds the Dockerfile and queries the container; runs only where a Docker engine answers."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip(
            "not run: no Docker engine on this machine (docker info failed); the TF Serving contract is "
            "tested in-process above"
        )
    root = pathlib.Path(__file__).resolve().parents[2]
    # The build context is the repository: the checkpoint to serve is written inside it.
    checkpoint = root / "runs" / "docker_test" / "model.keras"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    HACNN(None, **TINY_MODEL).save(checkpoint)
    subprocess.run(
        [
            docker,
            "build",
            "-t",
            "hacnn-serving-test",
            "--build-arg",
            f"CHECKPOINT={checkpoint.relative_to(root)}",
            str(root),
        ],
        check=True,
    )
    container = subprocess.run(
        [docker, "run", "-d", "--rm", "-p", "127.0.0.1:18501:8501", "hacnn-serving-test"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        import time
        import urllib.request

        from hacnn_tf.serving import embed_rest

        for _ in range(60):
            try:
                urllib.request.urlopen("http://127.0.0.1:18501/v1/models/hacnn", timeout=2)
                break
            except OSError:
                time.sleep(1)
        images = [pathlib.Path(p).read_bytes() for p in tiny_synthetic.query["path"].iloc[:3]]
        import keras

        model = keras.saving.load_model(checkpoint, compile=False)
        np.testing.assert_allclose(
            embed_rest(images, "http://127.0.0.1:18501"), keras_embedding(model, images), atol=1e-4
        )
    finally:
        subprocess.run([docker, "stop", container], capture_output=True)
