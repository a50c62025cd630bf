"""`ReIDEmbedder` against crops cut and resized independently (numpy slicing, one `tf.image.resize` per crop) and
embedded by the model itself; boxmot's `get_features`; the tracker loop of docs/tracking.md."""

import pathlib
import re

import numpy as np
import pytest
from crop_reference import FRAME_BOXES, INVALID, reference_embeddings

from hacnn_tf.runtime.keras_model import KerasEmbedder
from hacnn_tf.tracking import ReIDEmbedder

TRACKING_PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "tracking.md"


@pytest.fixture(scope="module")
def keras_embedder(export_model):
    return KerasEmbedder(export_model)


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (120, 90, 3), dtype=np.uint8), rng.integers(0, 256, (70, 150, 3), dtype=np.uint8)]


def test_every_box_equals_its_crop_embedded_alone(export_model, keras_embedder, frames):
    embedder = ReIDEmbedder(export_model, batch_size=4)
    got = embedder(frames[0], FRAME_BOXES)
    want = reference_embeddings(keras_embedder, keras_embedder.input_size, frames[:1], [FRAME_BOXES])
    assert got.shape == (len(FRAME_BOXES), 64) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert not got[INVALID].any()
    np.testing.assert_allclose(np.linalg.norm(np.delete(got, INVALID, 0), axis=1), np.sqrt(2), atol=1e-5)


def test_several_frames_in_one_call_come_frame_then_box(export_model, keras_embedder, frames):
    boxes = [FRAME_BOXES[:5], np.zeros((0, 4)), FRAME_BOXES[3:9] * [1.5, 0.5, 1.5, 0.5]]
    got = ReIDEmbedder(export_model)([frames[0], frames[1][:, :40], frames[1]], boxes)
    three = [frames[0], frames[1][:, :40], frames[1]]
    want = reference_embeddings(keras_embedder, keras_embedder.input_size, three, boxes)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert ReIDEmbedder(export_model)([], []).shape == (0, 64)
    assert ReIDEmbedder(export_model)(frames[0], np.zeros((0, 4))).shape == (0, 64)


def test_channel_order_and_float_frames(export_model, frames):
    rgb = ReIDEmbedder(export_model)(frames[0], FRAME_BOXES)
    bgr = ReIDEmbedder(export_model, channel_order="BGR")(np.ascontiguousarray(frames[0][..., ::-1]), FRAME_BOXES)
    np.testing.assert_allclose(bgr, rgb, atol=1e-5, rtol=0)
    as_float = ReIDEmbedder(export_model)(frames[0].astype(np.float32), FRAME_BOXES)
    np.testing.assert_allclose(as_float, rgb, atol=1e-5, rtol=0)
    assert np.abs(ReIDEmbedder(export_model)(frames[0][..., ::-1], FRAME_BOXES[:3]) - rgb[:3]).max() > 1e-3


def test_get_features_is_boxmots_call(export_model, frames):
    """boxmot passes the BGR frame as OpenCV reads it and wants unit-length rows."""
    embedder = ReIDEmbedder(export_model)  # channel_order does not apply to get_features
    bgr = np.ascontiguousarray(frames[0][..., ::-1])
    features = embedder.get_features(FRAME_BOXES, bgr)
    rgb = embedder(frames[0], FRAME_BOXES)
    valid = np.delete(np.arange(len(FRAME_BOXES)), INVALID)
    np.testing.assert_allclose(features[valid], rgb[valid] / np.sqrt(2), atol=1e-5, rtol=0)
    assert not features[INVALID].any()
    assert embedder.get_features(np.zeros((0, 4)), bgr).shape == (0, 64)


def test_refusals_name_the_input(export_model, frames):
    embedder = ReIDEmbedder(export_model)
    with pytest.raises(ValueError, match=r"boxes of frame 0 must be \(B, 4\).*\(3, 5\)"):
        embedder(frames[0], np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"frame 1 must be \(height, width, 3\).*\(70, 150\)"):
        embedder([frames[0], frames[1][..., 0]], [FRAME_BOXES, FRAME_BOXES])
    with pytest.raises(ValueError, match="2 frames and 1 box arrays"):
        embedder(frames, [FRAME_BOXES])
    with pytest.raises(ValueError, match="sequence of"):
        embedder(frames, FRAME_BOXES)
    with pytest.raises(ValueError, match="channel_order"):
        ReIDEmbedder(export_model, channel_order="bgr")
    with pytest.raises(TypeError, match="model path, an Embedder or a Keras HACNN"):
        ReIDEmbedder(42)


def test_docs_tracker_loop_runs(exported_saved_model):
    """The tracker loop of docs/tracking.md, run on the exported SavedModel: the greedy cosine association recovers
    which detection of the moved frame is which track."""
    section = TRACKING_PAGE.read_text().split("## The tracker loop", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python[^\n]*\n(.*?)```", section, re.S).group(1)
    assert '"demo/export/saved_model-fp32/hacnn/1"' in code
    namespace = {}
    exec(code.replace('"demo/export/saved_model-fp32/hacnn/1"', repr(str(exported_saved_model))), namespace)
    assert sorted(namespace["pairs"]) == [(0, 1), (1, 2), (2, 0)]


def test_bad_pixels_and_box_values_are_refused_naming_the_frame(export_model, frames):
    """NaN, infinite or out-of-range float pixels would give a row of zeros (the ReLUs drop NaN), which reads as
    "invalid box"; a 2-D array is one grayscale frame, not a sequence of rows; boxes that are not numbers."""
    embedder = ReIDEmbedder(export_model)
    good = frames[0].astype(np.float32)
    outside = r"pixels outside 0\.\.255"
    for value, what in ((np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"), (256.0, outside), (-1.0, outside)):
        bad = good.copy()
        bad[7, 5, 1] = value
        with pytest.raises(ValueError, match=rf"frame 1 holds {what}"):
            embedder([good, bad], [FRAME_BOXES, FRAME_BOXES])
    edges = good.copy()
    edges[:2], edges[-2:] = 0.0, 255.0  # the range's ends are pixels
    np.testing.assert_allclose(
        embedder(edges, FRAME_BOXES), embedder(edges.astype(np.uint8), FRAME_BOXES), atol=1e-5, rtol=0
    )
    with pytest.raises(ValueError, match=r"frame must be \(height, width, 3\).*\(120, 90\)"):
        embedder(frames[0][..., 0], FRAME_BOXES)
    with pytest.raises(ValueError, match=r"frame must be \(height, width, 3\).*\(120, 90\)"):
        embedder.get_features(FRAME_BOXES, frames[0][..., 0])
    with pytest.raises(ValueError, match=r"boxes of frame 0 must be \(B, 4\) numbers"):
        embedder(frames[0], [[1, 2, 3, 4], [1, 2, 3]])
    with pytest.raises(ValueError, match=r"boxes of frame 0 must be \(B, 4\) numbers"):
        embedder(frames[0], [["a", "b", "c", "d"]])
