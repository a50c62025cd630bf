"""The TF Serving clients' `embed_boxes` call without a server: the REST body's JSON structure and the gRPC
`PredictRequest`'s tensors run through TF Serving's session loader, equal to `ReIDEmbedder`; the requests of two
clients merged as TF Serving's server-side batching merges them."""

import base64
import json

import numpy as np
import pytest
import tensorflow as tf

from hacnn_tf.serving import box_rows, build_boxes_predict_request, build_boxes_rest_body, take_boxes
from hacnn_tf.tracking import ReIDEmbedder


@pytest.fixture(scope="module")
def camera_frames():
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, size, dtype=np.uint8) for size in ((90, 120, 3), (60, 80, 3), (100, 50, 3))]
    boxes = [
        np.array([[5, 5, 40, 80], [60, 10, 119, 89], [0, 0, 0, 0], [100, 50, 300, 400], [3, 3, 5, 4]]),
        np.zeros((0, 4)),
        np.array([[10, 10, 40, 90]]),
    ]
    return frames, [tf.io.encode_png(frame).numpy() for frame in frames], boxes


def test_box_rows_pad_split_and_take_in_order():
    frames, boxes = [b"a", b"b", b"c"], [np.arange(20).reshape(5, 4), np.zeros((0, 4)), np.ones((1, 4))]
    row_frames, row_boxes, take = box_rows(frames, boxes, boxes_per_row=2)
    assert row_frames == [b"a", b"a", b"a", b"c"] and row_boxes.shape == (4, 2, 4)
    np.testing.assert_array_equal(row_boxes.reshape(-1, 4)[take], np.concatenate(boxes))
    assert not row_boxes[2, 1].any() and not row_boxes[3, 1].any()  # padding: 0, 0, 0, 0
    with pytest.raises(ValueError, match=r"boxes of frame 1 must be \(B, 4\)"):
        box_rows(frames, [np.zeros((1, 4)), np.zeros((2, 3)), np.zeros((1, 4))])


def test_rest_body_runs_through_the_session_loader(session, export_model, camera_frames):
    frames, encoded, boxes = camera_frames
    body, take = build_boxes_rest_body(encoded, boxes, boxes_per_row=4)
    request = json.loads(body)
    assert request["signature_name"] == "embed_boxes" and len(request["instances"]) == 3  # 5 boxes: 2 rows
    assert set(request["instances"][0]) == {"frame_bytes", "boxes"}
    assert base64.b64decode(request["instances"][2]["frame_bytes"]["b64"]) == encoded[2]
    assert np.array(request["instances"][1]["boxes"]).shape == (4, 4)
    # What TF Serving feeds for the row format: each input stacked across instances.
    feeds = {
        "frame_bytes": np.array([base64.b64decode(i["frame_bytes"]["b64"]) for i in request["instances"]]),
        "boxes": np.array([i["boxes"] for i in request["instances"]], np.float32),
    }
    embedding = session.run("embed_boxes", feeds)["embedding"]
    response = json.dumps({"predictions": embedding.tolist()})
    got = take_boxes(json.loads(response)["predictions"], take)
    want = ReIDEmbedder(export_model)(frames, boxes)
    assert got.shape == (6, 64)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_grpc_request_runs_through_the_session_loader_and_merges_like_server_batching(
    session, export_model, camera_frames
):
    frames, encoded, boxes = camera_frames
    first, take_first = build_boxes_predict_request(encoded[:2], boxes[:2])
    second, take_second = build_boxes_predict_request(encoded[2:], boxes[2:])
    assert first.model_spec.signature_name == "embed_boxes"
    feeds = [{name: tf.make_ndarray(proto) for name, proto in request.inputs.items()} for request in (first, second)]
    assert feeds[0]["boxes"].shape == (1, 32, 4) and feeds[0]["frame_bytes"].shape == (1,)
    # Server-side batching concatenates the inputs of concurrent requests along the batch axis and splits the
    # outputs back: possible because every input has one row per frame and a fixed row width.
    merged = session.run("embed_boxes", {name: np.concatenate([f[name] for f in feeds]) for name in feeds[0]})
    embedding = merged["embedding"]
    got = np.concatenate([take_boxes(embedding[:1], take_first), take_boxes(embedding[1:], take_second)])
    np.testing.assert_allclose(got, ReIDEmbedder(export_model)(frames, boxes), atol=1e-5, rtol=0)
    alone = session.run("embed_boxes", feeds[0])["embedding"]
    np.testing.assert_allclose(take_boxes(alone, take_first), got[:5], atol=1e-5, rtol=0)


def test_box_rows_refuse_decoded_frames_and_bad_row_widths(camera_frames):
    """A decoded frame is a buffer that base64 encodes without complaint: the server would see raw pixels."""
    frames, encoded, boxes = camera_frames
    with pytest.raises(TypeError, match=r"frame 1 must be encoded image bytes.*ndarray"):
        box_rows([encoded[0], frames[1]], boxes[:2])
    with pytest.raises(TypeError, match=r"frame 0 must be encoded image bytes.*str"):
        build_boxes_rest_body(["c1/000.jpg"], boxes[:1])
    for width in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=rf"boxes_per_row must be a positive integer; got {width}"):
            box_rows(encoded, boxes, boxes_per_row=width)
    row_frames, _, _ = box_rows(np.array(encoded[:1]), boxes[:1], boxes_per_row=5)  # numpy bytes are bytes
    assert row_frames == [encoded[0]]
