"""TF Serving warm-up records (`assets.extra/tf_serving_warmup_requests`): real `PredictionLog`s, so the server runs
(and compiles) the graph before it takes the first request."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

from hacnn_tf.serving.tf_serving_loader import WARMUP_FILE


def write_warmup_requests(
    saved_model_dir: str | os.PathLike,
    images: Sequence[bytes],
    model_name: str = "hacnn",
    batch_sizes: Sequence[int] = (1, 8),
) -> pathlib.Path:
    """Writes one `serving_default` predict request per batch size (images repeated as needed)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from hacnn_tf.serving.client import build_predict_request

    if not images:
        raise ValueError("write_warmup_requests needs at least one encoded image")
    path = pathlib.Path(saved_model_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for size in batch_sizes:
            batch = [images[i % len(images)] for i in range(size)]
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=build_predict_request(batch, model_name))
            )
            writer.write(log.SerializeToString())
    return path
