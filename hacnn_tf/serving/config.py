"""TF Serving's configuration files read as the server reads them: protobuf text format against its own schemas.

`--model_config_file` is a `ModelServerConfig` (shipped in tensorflow-serving-api). `--batching_parameters_file`
(`BatchingParameters`) and `--monitoring_config_file` (`MonitoringConfig`) are not in that package; their schemas
are declared here with the field names, numbers and types of tensorflow/serving's
`tensorflow_serving/servables/tensorflow/session_bundle_config.proto` and `tensorflow_serving/config/
monitoring_config.proto`, so that a misspelt field or a wrong type fails here as it would fail the server's start.

`python -m hacnn_tf.serving.config FILE...` checks files (by their name: `*batching*`, `*monitoring*`, else a model
config) and prints what they set.
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Sequence

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

_PACKAGE = "hacnn_tf.tf_serving_schema"
_INT64_VALUE = ".google.protobuf.Int64Value"
_STRING_VALUE = ".google.protobuf.StringValue"


def _schema_classes() -> dict:
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="hacnn_tf/tf_serving_schema.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=[wrappers_pb2.DESCRIPTOR.name],
    )

    def message(name: str, fields: Sequence[tuple]) -> None:
        proto = file.message_type.add(name=name)
        for field_name, number, kind, type_name, repeated in fields:
            proto.field.add(
                name=field_name,
                number=number,
                type=kind,
                type_name=type_name,
                label=field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL,
            )

    message(
        "BatchingParameters",
        [
            ("max_batch_size", 1, field.TYPE_MESSAGE, _INT64_VALUE, False),
            ("batch_timeout_micros", 2, field.TYPE_MESSAGE, _INT64_VALUE, False),
            ("max_enqueued_batches", 3, field.TYPE_MESSAGE, _INT64_VALUE, False),
            ("num_batch_threads", 4, field.TYPE_MESSAGE, _INT64_VALUE, False),
            ("thread_pool_name", 5, field.TYPE_MESSAGE, _STRING_VALUE, False),
            ("allowed_batch_sizes", 6, field.TYPE_INT64, None, True),
            ("pad_variable_length_inputs", 7, field.TYPE_BOOL, None, False),
        ],
    )
    message(
        "PrometheusConfig", [("enable", 1, field.TYPE_BOOL, None, False), ("path", 2, field.TYPE_STRING, None, False)]
    )
    message("MonitoringConfig", [("prometheus_config", 1, field.TYPE_MESSAGE, f".{_PACKAGE}.PrometheusConfig", False)])
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(file.SerializeToString())
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in ("BatchingParameters", "MonitoringConfig")
    }


_CLASSES = _schema_classes()
BatchingParameters = _CLASSES["BatchingParameters"]
MonitoringConfig = _CLASSES["MonitoringConfig"]


def _parse(path: str | os.PathLike, message):
    path = pathlib.Path(path)
    try:
        return text_format.Parse(path.read_text(), message)
    except text_format.ParseError as error:
        raise ValueError(f"{path}: not a valid {type(message).__name__} (protobuf text format): {error}") from None


def read_batching_parameters(path: str | os.PathLike):
    """`BatchingParameters` of a `--batching_parameters_file`, with the server's own checks: sizes positive,
    `allowed_batch_sizes` increasing and ending at `max_batch_size`; and `pad_variable_length_inputs` off, which the
    box signatures need: TF Serving pads each merged request's tensors past the batch axis with the tensor's first
    value and splits the outputs without cutting the padding off, so an `embed_boxes` reply would come back wider
    than the request's rows of boxes and `embed_boxes_pixels` would crop the padding beyond a smaller frame's
    border."""
    params = _parse(path, BatchingParameters())
    if params.pad_variable_length_inputs:
        raise ValueError(
            f"{path}: pad_variable_length_inputs must be false: TF Serving pads merged requests with "
            f"their first value and does not cut the padding off the replies, which would widen "
            f"embed_boxes replies and change embed_boxes_pixels crops at frame borders"
        )
    sizes = list(params.allowed_batch_sizes)
    if params.HasField("max_batch_size") and params.max_batch_size.value < 1:
        raise ValueError(f"{path}: max_batch_size must be positive; got {params.max_batch_size.value}")
    if params.HasField("num_batch_threads") and params.num_batch_threads.value < 1:
        raise ValueError(f"{path}: num_batch_threads must be >= 1; got {params.num_batch_threads.value}")
    if sizes:
        if sizes != sorted(set(sizes)) or sizes[0] < 1:
            raise ValueError(f"{path}: allowed_batch_sizes must be positive and increasing; got {sizes}")
        if not params.HasField("max_batch_size") or sizes[-1] != params.max_batch_size.value:
            raise ValueError(f"{path}: the last allowed_batch_sizes entry ({sizes[-1]}) must equal max_batch_size")
    return params


def read_monitoring_config(path: str | os.PathLike):
    """`MonitoringConfig` of a `--monitoring_config_file`."""
    return _parse(path, MonitoringConfig())


def read_model_server_config(path: str | os.PathLike):
    """`ModelServerConfig` of a `--model_config_file`; every model needs a name and a base path."""
    from tensorflow_serving.config import model_server_config_pb2

    config = _parse(path, model_server_config_pb2.ModelServerConfig())
    for model in config.model_config_list.config:
        if not model.name or not model.base_path:
            raise ValueError(f"{path}: every model config needs a name and a base_path; got {model}")
    return config


def main(argv: Sequence[str] | None = None) -> None:
    for name in argv if argv is not None else sys.argv[1:]:
        reader = (
            read_batching_parameters
            if "batching" in pathlib.Path(name).name
            else read_monitoring_config
            if "monitoring" in pathlib.Path(name).name
            else read_model_server_config
        )
        print(f"{name}: valid {reader.__name__[5:]}\n" + text_format.MessageToString(reader(name), as_one_line=True))


if __name__ == "__main__":
    main()
