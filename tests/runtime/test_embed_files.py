"""`Embedder.embed_files`: image files, encoded bytes and pixel arrays of any size give the embeddings the exported
SavedModel's `serving_default` gives the same bytes (its `HACNNPreprocessor` decodes and resizes them)."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from hacnn_tf.errors import DataError, InputFileError
from hacnn_tf.export.saved_model import row_cosines
from hacnn_tf.runtime import load_embedder
from hacnn_tf.runtime.keras_model import KerasEmbedder
from hacnn_tf.serving.signatures import BYTES_INPUT, OUTPUT, SERVING_SIGNATURE

# Real crop sizes (height, width): a detector's person box at re-id size, and boxes cut from a 1920 x 1080 frame
# (a person near the camera, a whole-height one, the whole frame).
SIZES = ((128, 64), (128, 64), (700, 300), (1080, 480), (1080, 1920))


def person_like(size, seed: int) -> np.ndarray:
    """Smooth random RGB uint8 pixels of `size` (blobs, as a photo has, so that JPEG keeps them)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(12, 6, 3)).astype("float32")
    return tf.cast(tf.clip_by_value(tf.image.resize(coarse, size, method="bicubic"), 0, 255), tf.uint8).numpy()


def encoded(pixels: np.ndarray, format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format, quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> dict:
    """`{"jpeg": [paths], "png": [paths], "pixels": [arrays]}` of the `SIZES` crops (the PNGs hold the arrays)."""
    folder = tmp_path_factory.mktemp("crops")
    files = {"jpeg": [], "png": [], "pixels": []}
    for index, size in enumerate(SIZES):
        pixels = person_like(size, index)
        files["pixels"].append(pixels)
        for kind, suffix in (("jpeg", "jpg"), ("png", "png")):
            path = folder / f"crop{index}_{size[0]}x{size[1]}.{suffix}"
            path.write_bytes(encoded(pixels, kind.upper()))
            files[kind].append(path)
    return files


@pytest.fixture(scope="module")
def serving(exported_saved_model):
    """`serving_default` of the exported SavedModel: `[encoded bytes] -> (N, D)`."""
    signature = tf.saved_model.load(str(exported_saved_model)).signatures[SERVING_SIGNATURE]
    return lambda data: signature(**{BYTES_INPUT: tf.constant(data)})[OUTPUT].numpy()


def test_files_bytes_and_arrays_equal_serving_default_on_the_same_bytes(
    exported_saved_model, export_model, crops, serving
):
    embedder = load_embedder(exported_saved_model)
    for kind in ("jpeg", "png"):
        reference = serving([path.read_bytes() for path in crops[kind]])
        got = embedder.embed_files(crops[kind], batch_size=2)  # 5 images: batches of 2, 2, 1
        assert got.shape == reference.shape == (5, 64) and got.dtype == np.float32
        assert row_cosines(got, reference).min() >= 0.999
        np.testing.assert_allclose(got, reference, atol=1e-5, err_msg=kind)
    # Encoded bytes and str paths, mixed; the PNGs' pixel arrays (PNG is lossless: the same pixels).
    png = serving([path.read_bytes() for path in crops["png"]])
    mixed = [str(crops["png"][0]), crops["png"][1].read_bytes(), *crops["pixels"][2:]]
    np.testing.assert_allclose(embedder.embed_files(mixed, batch_size=4), png, atol=1e-5)
    np.testing.assert_allclose(KerasEmbedder(export_model).embed_files(crops["png"]), png, atol=1e-5)
    # A 4-D array of same-sized images, and nothing at all.
    same = np.stack(crops["pixels"][:2])
    np.testing.assert_allclose(embedder.embed_files(same), png[:2], atol=1e-5)
    assert embedder.embed_files([]).shape == (0, 64)


def test_unreadable_inputs_are_named(exported_saved_model, crops, tmp_path):
    embedder = load_embedder(exported_saved_model)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(crops["jpeg"][0].read_bytes()[:200])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(
        DataError,
        match=r"corrupt\.jpg: not a readable image \(InvalidArgumentError: .*\); give "
        r"JPEG, PNG, BMP, GIF or WebP images",
    ):
        embedder.embed_files([crops["jpeg"][0], corrupt, crops["jpeg"][1]])
    with pytest.raises(DataError, match=r"empty\.png: not a readable image \(an empty file\)"):
        embedder.embed_files([empty])
    with pytest.raises(DataError, match=r"image 1: not a readable image"):
        embedder.embed_files([crops["jpeg"][0].read_bytes(), b"not an image"])
    with pytest.raises(InputFileError, match=r"missing\.jpg: no such image file"):
        embedder.embed_files([tmp_path / "missing.jpg"])
    with pytest.raises(ValueError, match=r"image 0: pixels must be \(height, width, 3\) RGB; got shape \(4, 4\)"):
        embedder.embed_files([np.zeros((4, 4), np.uint8)])
    with pytest.raises(TypeError, match="wrap it in a list"):
        embedder.embed_files(str(crops["jpeg"][0]))
