"""The exported `embed_boxes` and `embed_boxes_pixels` signatures: every box equals its crop cut and resized
independently and run through `embed_images`, is close to the crop saved as JPEG through `serving_default`, and
equals `ReIDEmbedder`; under both loaders (`tf.saved_model.load` and TF Serving's session loader)."""

import numpy as np
import pytest
import tensorflow as tf
from crop_reference import FRAME_BOXES, INVALID, reference_embeddings

from hacnn_tf.export.saved_model import _boxes_fns, _embedding_fn, row_cosines
from hacnn_tf.tracking import ReIDEmbedder


@pytest.fixture(scope="module")
def loaded(exported_saved_model):
    return tf.saved_model.load(str(exported_saved_model))


@pytest.fixture(scope="module")
def frames():
    """Two 120 x 90 frames (the pixel signature takes frames of one size) and a 70 x 150 one."""
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, size, dtype=np.uint8) for size in ((120, 90, 3), (120, 90, 3), (70, 150, 3))]


def png(frame: np.ndarray) -> bytes:
    return tf.io.encode_png(frame).numpy()


def test_embed_boxes_equals_embed_images_of_each_crop(loaded, session, export_model, frames):
    """PNG frames of two sizes in one request, each with the edge-case boxes (borders, 1-2 px, larger than the
    frame, outside, degenerate, NaN); rows of zeros for the invalid ones."""
    boxes = np.stack([FRAME_BOXES, FRAME_BOXES[::-1] * 1.3])
    request = [frames[0], frames[2]]
    embed_images = loaded.signatures["embed_images"]
    want = reference_embeddings(
        lambda crop: embed_images(images=tf.constant(crop))["embedding"].numpy(),
        export_model.input_size,
        request,
        boxes,
    ).reshape(2, len(FRAME_BOXES), -1)
    feeds = {"frame_bytes": np.array([png(frame) for frame in request]), "boxes": boxes}
    got = loaded.signatures["embed_boxes"](**{k: tf.constant(v) for k, v in feeds.items()})["embedding"].numpy()
    served = session.run("embed_boxes", feeds)["embedding"]
    assert got.shape == served.shape == (2, len(FRAME_BOXES), 64)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(served, want, atol=1e-5, rtol=0)
    assert not got[0, INVALID].any() and (np.abs(want).sum(axis=2) > 0).sum() >= 15
    python = ReIDEmbedder(export_model)(request, list(boxes)).reshape(got.shape)
    np.testing.assert_allclose(python, got, atol=1e-5, rtol=0)


def test_embed_boxes_pixels_equals_the_bytes_signature(loaded, session, frames):
    boxes = np.stack([FRAME_BOXES, FRAME_BOXES[::-1]])
    pixels = {"frames": np.stack(frames[:2]), "boxes": boxes}
    encoded = {"frame_bytes": np.array([png(frame) for frame in frames[:2]]), "boxes": boxes}
    from_pixels = session.run("embed_boxes_pixels", pixels)["embedding"]
    from_bytes = loaded.signatures["embed_boxes"](**{k: tf.constant(v) for k, v in encoded.items()})["embedding"]
    tf2 = loaded.signatures["embed_boxes_pixels"](**{k: tf.constant(v) for k, v in pixels.items()})["embedding"]
    np.testing.assert_allclose(from_pixels, from_bytes.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(tf2.numpy(), from_pixels, atol=1e-5, rtol=0)


def test_embed_boxes_is_close_to_the_crop_saved_as_jpeg(loaded):
    """A tracker that saved each crop as a JPEG and sent it to serving_default gets nearly the same embedding (on a
    smooth frame, as camera frames are: JPEG cannot keep pixel noise)."""
    smooth = np.random.default_rng(4).integers(0, 256, (12, 9, 3)).astype(np.float32)
    frame = tf.cast(tf.round(tf.image.resize(smooth, (120, 90), method="bicubic")), tf.uint8)
    frame = tf.clip_by_value(frame, 0, 255).numpy()
    boxes = np.array(
        [
            [10, 20, 40, 90],
            [0, 0, 30, 60],
            [60, 50, 90, 120],
            [12.4, 33.7, 41.2, 80.9],
            [-50, -40, 200, 300],
            [30, 60, 75, 119],
            [1, 2, 5, 9],
        ],
        np.float32,
    )
    got = loaded.signatures["embed_boxes"](frame_bytes=tf.constant([png(frame)]), boxes=tf.constant(boxes[None]))[
        "embedding"
    ].numpy()[0]
    jpegs = []
    for x1, y1, x2, y2 in np.clip(boxes, 0, [90, 120, 90, 120]):
        region = frame[int(np.floor(y1)) : int(np.ceil(y2)), int(np.floor(x1)) : int(np.ceil(x2))]
        jpegs.append(tf.io.encode_jpeg(region, quality=95).numpy())
    via_jpeg = loaded.signatures["serving_default"](image_bytes=tf.constant(jpegs))["embedding"].numpy()
    assert row_cosines(got, via_jpeg).mean() >= 0.99


def test_no_boxes_and_no_frames_give_empty_results(loaded, frames):
    embed = loaded.signatures["embed_boxes"]
    assert embed(frame_bytes=tf.constant([png(frames[0])]), boxes=tf.zeros((1, 0, 4)))["embedding"].shape == (1, 0, 64)
    assert embed(frame_bytes=tf.constant([], tf.string), boxes=tf.zeros((0, 3, 4)))["embedding"].shape == (0, 3, 64)
    padding = embed(frame_bytes=tf.constant([png(frames[0])]), boxes=tf.zeros((1, 3, 4)))["embedding"].numpy()
    assert padding.shape == (1, 3, 64) and not padding.any()


def test_refusals_are_invalid_argument(session, loaded, frames, export_model):
    """Mismatched rows, empty or oversized frames are refused in the graph with a message naming the input."""
    with pytest.raises(tf.errors.InvalidArgumentError, match="one row of boxes per frame"):
        session.run("embed_boxes", {"frame_bytes": np.array([png(frames[0])] * 2), "boxes": np.zeros((3, 1, 4))})
    with pytest.raises(tf.errors.InvalidArgumentError, match="frame_bytes holds an empty string"):
        session.run("embed_boxes", {"frame_bytes": np.array([b""], object), "boxes": np.zeros((1, 1, 4))})
    with pytest.raises(tf.errors.InvalidArgumentError, match="one row of boxes per frame"):
        loaded.signatures["embed_boxes_pixels"](frames=tf.constant(np.stack(frames[:2])), boxes=tf.zeros((1, 2, 4)))
    _, from_pixels = _boxes_fns(export_model, _embedding_fn(export_model), max_pixels=100 * 80)
    limited = tf.function(from_pixels, autograph=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Frames too large: more than the limit of 8000"):
        limited(tf.constant(frames[0][None]), tf.zeros((1, 1, 4)))
    assert limited(tf.constant(frames[0][:80, :90][None]), tf.zeros((1, 1, 4)))["embedding"].shape == (1, 1, 64)
