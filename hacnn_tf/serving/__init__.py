"""TF Serving: REST and gRPC clients for the exported HA-CNN, and warm-up records."""

from hacnn_tf.serving.client import (
    box_rows,
    build_boxes_predict_request,
    build_boxes_rest_body,
    build_predict_request,
    build_rest_body,
    embed_boxes_grpc,
    embed_boxes_rest,
    embed_grpc,
    embed_rest,
    parse_boxes_rest_response,
    parse_predict_response,
    parse_rest_response,
    take_boxes,
)

__all__ = [
    "box_rows",
    "build_boxes_predict_request",
    "build_boxes_rest_body",
    "build_predict_request",
    "build_rest_body",
    "embed_boxes_grpc",
    "embed_boxes_rest",
    "embed_grpc",
    "embed_rest",
    "parse_boxes_rest_response",
    "parse_predict_response",
    "parse_rest_response",
    "take_boxes",
]
