"""Embed image files through TF Serving, over REST (`:predict`, b64 instances) or gRPC (`PredictRequest`).

The request builders are separate from the transport so that tests can feed the exact payload a server would get to
the exported signature in-process. gRPC needs `tensorflow-serving-api` (installed with `--no-deps` beside
tensorflow-cpu: see the README).
"""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Sequence

import numpy as np

from hacnn_tf.serving.signatures import BYTES_INPUT, OUTPUT, SERVING_SIGNATURE


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


def embed_rest(images: Sequence[bytes], url: str = "http://localhost:8501", model_name: str = "hacnn",
               timeout: float = 30.0) -> np.ndarray:
    """Embeddings of encoded images from TF Serving's REST API (`POST /v1/models/<name>:predict`)."""
    request = urllib.request.Request(f"{url.rstrip('/')}/v1/models/{model_name}:predict",
                                     data=build_rest_body(images).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return parse_rest_response(response.read())


def build_predict_request(images: Sequence[bytes], model_name: str = "hacnn",
                          signature_name: str = SERVING_SIGNATURE):
    """A gRPC `PredictRequest` carrying the encoded images as the `image_bytes` string tensor."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs[BYTES_INPUT].CopyFrom(tf.make_tensor_proto(list(images), dtype=tf.string))
    return request


def parse_predict_response(response) -> np.ndarray:
    import tensorflow as tf

    return tf.make_ndarray(response.outputs[OUTPUT]).astype(np.float32)


def embed_grpc(images: Sequence[bytes], target: str = "localhost:8500", model_name: str = "hacnn",
               timeout: float = 30.0) -> np.ndarray:
    """Embeddings of encoded images from TF Serving's gRPC `PredictionService.Predict`."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return parse_predict_response(stub.Predict(build_predict_request(images, model_name), timeout))
