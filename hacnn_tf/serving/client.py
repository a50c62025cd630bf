"""Embed image files, or the detector boxes of camera frames, through TF Serving, over REST (`:predict`, b64
instances) or gRPC (`PredictRequest`).

The request builders are separate from the transport so that tests can feed the exact payload a server would get to
the exported signature in-process. gRPC needs `tensorflow-serving-api` (installed with `--no-deps` beside
tensorflow-cpu: see the README).
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Sequence

import numpy as np

from hacnn_tf.serving.signatures import (
    BOXES_INPUT,
    BOXES_SIGNATURE,
    BYTES_INPUT,
    FRAME_BYTES_INPUT,
    MAX_BOXES,
    OUTPUT,
    SERVING_SIGNATURE,
)

# Boxes per row of an `embed_boxes` request: a fixed width, so that TF Serving's server-side batching can merge the
# requests of several clients (it refuses to merge inputs whose shapes differ past the batch axis).
BOXES_PER_ROW = 32


def build_rest_body(images: Sequence[bytes], signature_name: str = SERVING_SIGNATURE) -> str:
    """The JSON body of a REST `:predict` request: one `{"b64": ...}` instance per encoded image (row format)."""
    instances = [{"b64": base64.b64encode(data).decode("ascii")} for data in images]
    return json.dumps({"signature_name": signature_name, "instances": instances})


def parse_rest_response(body: str | bytes) -> np.ndarray:
    """`(N, D)` float32 embeddings from a REST `:predict` response (`{"predictions": [[...], ...]}`)."""
    response = json.loads(body)
    if "predictions" not in response:
        raise ValueError(f"TF Serving REST response without 'predictions': {str(response)[:500]}")
    return np.asarray(response["predictions"], dtype=np.float32)


def _post(body: str, url: str, model_name: str, timeout: float) -> bytes:
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/models/{model_name}:predict",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def embed_rest(
    images: Sequence[bytes], url: str = "http://localhost:8501", model_name: str = "hacnn", timeout: float = 30.0
) -> np.ndarray:
    """Embeddings of encoded images from TF Serving's REST API (`POST /v1/models/<name>:predict`)."""
    return parse_rest_response(_post(build_rest_body(images), url, model_name, timeout))


def box_rows(
    frames: Sequence[bytes], boxes: Sequence[np.ndarray], boxes_per_row: int = BOXES_PER_ROW, max_boxes: int = MAX_BOXES
) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """The rows of an `embed_boxes` request for encoded `frames` and their `(B_i, 4)` pixel boxes: `(row_frames,
    row_boxes [R, boxes_per_row, 4] float32, take [sum B_i])`. A frame's boxes fill rows of `boxes_per_row`,
    padded with `0, 0, 0, 0` (no area: not embedded); a frame with more boxes spans several rows, its bytes repeated;
    a frame without boxes has no row. `take`: where each box's embedding lies in the `[R * boxes_per_row, D]`
    flattened response, frame by frame and box by box. `max_boxes`: the export's limit of boxes per row
    (`export_saved_model(max_boxes=...)`); a wider `boxes_per_row` is refused before anything is allocated, as the
    server would refuse the request."""
    if isinstance(boxes_per_row, bool) or not isinstance(boxes_per_row, int) or boxes_per_row < 1:
        raise ValueError(f"boxes_per_row must be a positive integer; got {boxes_per_row!r}")
    if boxes_per_row > max_boxes:
        raise ValueError(
            f"boxes_per_row {boxes_per_row} is above max_boxes {max_boxes}, the most boxes per row the "
            f"export's box signatures take (export_saved_model's max_boxes): use boxes_per_row <= "
            f"{max_boxes} (default {BOXES_PER_ROW}), or pass the export's own max_boxes"
        )
    if len(frames) != len(boxes):
        raise ValueError(f"got {len(frames)} frames and {len(boxes)} box arrays; give one box array per frame")
    row_frames, row_boxes, take = [], [], []
    for index, (frame, frame_boxes) in enumerate(zip(frames, boxes)):
        # A decoded frame (an array) base64-encodes as its raw buffer without complaint.
        if not isinstance(frame, bytes):
            raise TypeError(
                f"frame {index} must be encoded image bytes (JPEG, PNG, ...: e.g. cv2.imencode('.jpg', "
                f"frame)[1].tobytes()); got {type(frame).__name__}"
            )
        frame_boxes = np.asarray(frame_boxes, np.float32)
        frame_boxes = frame_boxes.reshape(0, 4) if frame_boxes.size == 0 else frame_boxes
        if frame_boxes.ndim != 2 or frame_boxes.shape[1] != 4:
            raise ValueError(f"boxes of frame {index} must be (B, 4) pixel x1, y1, x2, y2; got {frame_boxes.shape}")
        for start in range(0, len(frame_boxes), boxes_per_row):
            chunk = frame_boxes[start : start + boxes_per_row]
            take.extend(len(row_frames) * boxes_per_row + np.arange(len(chunk)))
            row_frames.append(frame)
            row_boxes.append(np.concatenate([chunk, np.zeros((boxes_per_row - len(chunk), 4), np.float32)]))
    return row_frames, np.array(row_boxes, np.float32).reshape(-1, boxes_per_row, 4), np.array(take, np.int64)


def build_boxes_rest_body(
    frames: Sequence[bytes], boxes: Sequence[np.ndarray], boxes_per_row: int = BOXES_PER_ROW, max_boxes: int = MAX_BOXES
) -> tuple[str, np.ndarray]:
    """`(body, take)`: the JSON body of an `embed_boxes` REST `:predict` request in row format (one instance per
    row of `box_rows`: `{"frame_bytes": {"b64": ...}, "boxes": [[x1, y1, x2, y2], ...]}`), and `take` for
    `parse_boxes_rest_response`."""
    row_frames, row_boxes, take = box_rows(frames, boxes, boxes_per_row, max_boxes)
    instances = [
        {FRAME_BYTES_INPUT: {"b64": base64.b64encode(frame).decode("ascii")}, BOXES_INPUT: row.tolist()}
        for frame, row in zip(row_frames, row_boxes)
    ]
    return json.dumps({"signature_name": BOXES_SIGNATURE, "instances": instances}), take


def take_boxes(embedding: np.ndarray, take: np.ndarray) -> np.ndarray:
    """`(sum B_i, D)` box embeddings, frame by frame, from an `embed_boxes` response's `[R, B, D]` embedding."""
    embedding = np.asarray(embedding, np.float32)
    return embedding.reshape(-1, embedding.shape[-1])[take] if embedding.size else np.zeros((0, 0), np.float32)


def parse_boxes_rest_response(body: str | bytes, take: np.ndarray) -> np.ndarray:
    """`(sum B_i, D)` float32 box embeddings from an `embed_boxes` REST response."""
    return take_boxes(parse_rest_response(body), take)


def embed_boxes_rest(
    frames: Sequence[bytes],
    boxes: Sequence[np.ndarray],
    url: str = "http://localhost:8501",
    model_name: str = "hacnn",
    boxes_per_row: int = BOXES_PER_ROW,
    timeout: float = 30.0,
    max_boxes: int = MAX_BOXES,
) -> np.ndarray:
    """Embeddings `(sum B_i, D)` of each encoded frame's `(B_i, 4)` boxes from TF Serving's REST API
    (`embed_boxes`); no request and a `(0, 0)` result when there are no boxes at all."""
    body, take = build_boxes_rest_body(frames, boxes, boxes_per_row, max_boxes)
    if len(take) == 0:
        return np.zeros((0, 0), np.float32)
    return parse_boxes_rest_response(_post(body, url, model_name, timeout), take)


def build_predict_request(images: Sequence[bytes], model_name: str = "hacnn", signature_name: str = SERVING_SIGNATURE):
    """A gRPC `PredictRequest` carrying the encoded images as the `image_bytes` string tensor."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs[BYTES_INPUT].CopyFrom(tf.make_tensor_proto(list(images), dtype=tf.string))
    return request


def build_boxes_predict_request(
    frames: Sequence[bytes],
    boxes: Sequence[np.ndarray],
    model_name: str = "hacnn",
    boxes_per_row: int = BOXES_PER_ROW,
    max_boxes: int = MAX_BOXES,
):
    """`(request, take)`: a gRPC `PredictRequest` of the `embed_boxes` signature (`frame_bytes` string `[R]`,
    `boxes` float32 `[R, boxes_per_row, 4]`, the rows of `box_rows`) and `take` for `take_boxes`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    row_frames, row_boxes, take = box_rows(frames, boxes, boxes_per_row, max_boxes)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = BOXES_SIGNATURE
    request.inputs[FRAME_BYTES_INPUT].CopyFrom(
        tf.make_tensor_proto(row_frames, dtype=tf.string, shape=[len(row_frames)])
    )
    request.inputs[BOXES_INPUT].CopyFrom(tf.make_tensor_proto(row_boxes, dtype=tf.float32))
    return request, take


def parse_predict_response(response) -> np.ndarray:
    import tensorflow as tf

    return tf.make_ndarray(response.outputs[OUTPUT]).astype(np.float32)


def embed_boxes_grpc(
    frames: Sequence[bytes],
    boxes: Sequence[np.ndarray],
    target: str = "localhost:8500",
    model_name: str = "hacnn",
    boxes_per_row: int = BOXES_PER_ROW,
    timeout: float = 30.0,
    max_boxes: int = MAX_BOXES,
) -> np.ndarray:
    """Embeddings `(sum B_i, D)` of each encoded frame's `(B_i, 4)` boxes from TF Serving's gRPC
    `PredictionService.Predict` (`embed_boxes`); no request and a `(0, 0)` result when there are no boxes."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request, take = build_boxes_predict_request(frames, boxes, model_name, boxes_per_row, max_boxes)
    if len(take) == 0:
        return np.zeros((0, 0), np.float32)
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return take_boxes(parse_predict_response(stub.Predict(request, timeout)), take)


def embed_grpc(
    images: Sequence[bytes], target: str = "localhost:8500", model_name: str = "hacnn", timeout: float = 30.0
) -> np.ndarray:
    """Embeddings of encoded images from TF Serving's gRPC `PredictionService.Predict`."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return parse_predict_response(stub.Predict(build_predict_request(images, model_name), timeout))
