"""`HACNNPreprocessor`: the one decode / resize / normalise, the same in eager code, `tf.function`, `tf.data`, the
training and evaluation pipelines and the tracker's crops."""

import io

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from hacnn_tf import HACNNPreprocessor
from hacnn_tf.data.hacnn_preprocessor import resize_pixels
from hacnn_tf.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from hacnn_tf.data.pipeline import make_eval_dataset, make_train_dataset
from hacnn_tf.tracking import crop_boxes


def encode(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=size, dtype=np.uint8) for size in ((40, 20, 3), (17, 33, 3), (64, 32, 3))]


def test_config_round_trip_and_registered_name():
    preprocessor = HACNNPreprocessor((64, 32), max_pixels=1000, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(preprocessor))
    assert type(revived) is HACNNPreprocessor
    assert keras.saving.get_registered_name(HACNNPreprocessor) == "hacnn_tf>HACNNPreprocessor"
    assert (revived.image_size, revived.max_pixels, revived.mean, revived.std) == (
        (64, 32),
        1000,
        (0.5, 0.5, 0.5),
        (0.25, 0.5, 1.0),
    )


def test_call_decodes_images_of_any_sizes_and_formats_each_as_alone(images):
    """One batch of PNG, JPEG and BMP files of three sizes, in eager code and in `tf.function(autograph=False)`
    (the serving signature's graph): each image equals its own resize of its own decode."""
    preprocessor = HACNNPreprocessor((64, 32))
    files = [encode(images[0], "PNG"), encode(images[1], "JPEG"), encode(images[2], "BMP")]
    eager = preprocessor(tf.constant(files)).numpy()
    traced = tf.function(preprocessor, autograph=False)(tf.constant(files)).numpy()
    assert eager.shape == (3, 64, 32, 3) and eager.dtype == np.float32
    np.testing.assert_array_equal(traced, eager)
    for row, data in zip(eager, files):
        decoded = tf.io.decode_image(data, channels=3).numpy()
        expected = tf.image.resize(decoded.astype(np.float32), (64, 32), method="bilinear", antialias=True).numpy()
        np.testing.assert_array_equal(row, expected)
    # PNG and BMP are lossless: the third image, already at the size, comes back unchanged.
    np.testing.assert_array_equal(eager[2], images[2].astype(np.float32))


def test_normalize_is_torchreid_imagenet_normalisation(images):
    pixels = images[2][None]
    expected = (pixels / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    normalized = np.asarray(HACNNPreprocessor((64, 32)).normalize(pixels))
    assert normalized.dtype == np.float32
    np.testing.assert_allclose(normalized, expected, atol=1e-5)
    other = HACNNPreprocessor((64, 32), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)).normalize(pixels)
    np.testing.assert_allclose(np.asarray(other), pixels / 255.0, atol=1e-6)


def test_max_pixels_refuses_a_large_image_before_decoding(images):
    data = tf.constant([encode(images[0], "PNG")])  # 40 x 20 = 800 pixels
    assert HACNNPreprocessor((64, 32), max_pixels=800)(data).shape == (1, 64, 32, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than the limit of 799 pixels"):
        HACNNPreprocessor((64, 32), max_pixels=799)(data)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": (64,)}, "image_size must be"),
        ({"image_size": (0, 32)}, "image_size must be"),
        ({"image_size": (64, 32), "max_pixels": 0}, "max_pixels must be"),
        ({"image_size": (64, 32), "max_pixels": True}, "max_pixels must be"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HACNNPreprocessor(**kwargs)


def test_pipelines_and_tracker_crops_give_the_preprocessor_pixels(tmp_path, images):
    """The evaluation and training pipelines (no augmentation) give the preprocessor's pixels, normalised; a box
    covering a whole frame gives the frame's resize."""
    paths = []
    for index, image in enumerate(images):
        paths.append(str(tmp_path / f"{index}.png"))
        Image.fromarray(image).save(paths[-1])
    table = pd.DataFrame({"path": paths, "pid": [0, 1, 2], "camid": [0, 0, 1]})
    preprocessor = HACNNPreprocessor((64, 32))
    pixels = preprocessor(tf.constant([tf.io.read_file(p).numpy() for p in paths])).numpy()
    raw = np.concatenate([batch.numpy() for batch in make_eval_dataset(table, (64, 32), 2, normalize=False)])
    np.testing.assert_array_equal(raw, pixels)
    normalized = np.concatenate([batch.numpy() for batch in make_eval_dataset(table, (64, 32), 2)])
    np.testing.assert_array_equal(normalized, preprocessor.normalize(pixels).numpy())
    train = make_train_dataset(table, (64, 32), 3, ["global_logits"], flip=False, translate=False)
    batch, labels = next(iter(train))
    order = labels["global_logits"].numpy()
    np.testing.assert_array_equal(batch.numpy(), preprocessor.normalize(pixels[order]).numpy())
    frame = images[0]
    crops, valid = crop_boxes(frame[None], tf.constant([[0.0, 0.0, 20.0, 40.0]]), tf.constant([0]), (64, 32))
    assert bool(valid[0])
    np.testing.assert_array_equal(crops[0].numpy(), preprocessor.resize(frame).numpy())
    np.testing.assert_array_equal(crops[0].numpy(), resize_pixels(frame, (64, 32)).numpy())
