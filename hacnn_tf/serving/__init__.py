"""TF Serving: REST and gRPC clients for the exported HA-CNN, and warm-up records."""

from hacnn_tf.serving.client import (
    build_predict_request,
    build_rest_body,
    embed_grpc,
    embed_rest,
    parse_predict_response,
    parse_rest_response,
)

__all__ = [
    "build_predict_request",
    "build_rest_body",
    "embed_grpc",
    "embed_rest",
    "parse_predict_response",
    "parse_rest_response",
]
