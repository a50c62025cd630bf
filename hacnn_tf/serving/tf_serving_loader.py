"""Runs an exported SavedModel the way its consumers do, with TensorFlow alone (this file imports nothing of
hacnn_tf, so that it proves the export needs no project code).

- `SessionModel`: TF Serving's loader. The C++ server (like `saved_model_cli run` and
  `tf.compat.v1.saved_model.loader.load`) imports the MetaGraph, runs the saver's restore op in a TF1 session and
  then feeds and fetches each signature's tensors by name. An export whose signatures read variables that the restore
  op does not restore fails only here (tensorflow/serving#2226), never under `tf.saved_model.load`.
- `replay_warmup_requests`: the `assets.extra/tf_serving_warmup_requests` records run as TF Serving runs them at load.
- Run as a script (`python -P tf_serving_loader.py EXPORT_DIR INPUTS.npz OUTPUTS.npz`), it is the export's self-check:
each
  `signature:input:case` array of INPUTS is fed through both loaders and the warm-up records are replayed; OUTPUTS
  gets `loader:signature:case:output` arrays and `warmup:index:output` arrays.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


class SessionModel:
    """A SavedModel loaded into a TF1 session exactly as TF Serving loads it; `run(signature, feeds)` feeds the
    signature's input tensors by name and returns its outputs as numpy arrays."""

    def __init__(self, export_dir: str | os.PathLike, tags: Sequence[str] = ("serve",)):
        self.export_dir = os.fspath(export_dir)
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        # Restores the variables with the saver's restore op, the only restore TF Serving runs.
        meta_graph = tf.compat.v1.saved_model.loader.load(self.session, list(tags), self.export_dir)
        self.signatures = dict(meta_graph.signature_def)

    def run(self, signature_name: str, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if signature_name not in self.signatures:
            raise KeyError(f"{self.export_dir}: no signature {signature_name!r}; it has {sorted(self.signatures)}")
        signature = self.signatures[signature_name]
        unknown = set(feeds) - set(signature.inputs)
        if unknown:
            raise KeyError(f"signature {signature_name!r} has inputs {sorted(signature.inputs)}, not {sorted(unknown)}")
        feed = {signature.inputs[name].name: value for name, value in feeds.items()}
        fetches = {name: info.name for name, info in signature.outputs.items()}
        return self.session.run(fetches, feed)

    def close(self) -> None:
        self.session.close()


def replay_warmup_requests(model: SessionModel) -> list[dict[str, np.ndarray]]:
    """Runs every `PredictionLog` of the export's warm-up file through `model`, as TF Serving does before it takes
    traffic (a failing record fails the model's load there); returns each record's outputs."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(model.export_dir, WARMUP_FILE)
    outputs = []
    for index, record in enumerate(tf.compat.v1.io.tf_record_iterator(path)):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"{path}: record {index} is a {log.WhichOneof('log_type')}, expected predict_log")
        request = log.predict_log.request
        feeds = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        outputs.append(model.run(request.model_spec.signature_name or "serving_default", feeds))
    return outputs


def run_cases(export_dir: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Feeds each `signature:input:case` array through `tf.saved_model.load` and `SessionModel`; replays the
    warm-up records if there are any. Keys of the result: `tf2|session:signature:case:output`, `warmup:i:output`."""
    cases: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for key, value in inputs.items():
        signature, name, case = key.split(":")
        cases.setdefault((signature, case), {})[name] = value
    results = {}
    loaded = tf.saved_model.load(export_dir)
    for (signature, case), feeds in cases.items():
        outputs = loaded.signatures[signature](**{name: tf.constant(value) for name, value in feeds.items()})
        results.update({f"tf2:{signature}:{case}:{name}": value.numpy() for name, value in outputs.items()})
    session = SessionModel(export_dir)
    try:
        for (signature, case), feeds in cases.items():
            outputs = session.run(signature, feeds)
            results.update({f"session:{signature}:{case}:{name}": value for name, value in outputs.items()})
        if os.path.exists(os.path.join(export_dir, WARMUP_FILE)):
            for index, outputs in enumerate(replay_warmup_requests(session)):
                results.update({f"warmup:{index}:{name}": value for name, value in outputs.items()})
    finally:
        session.close()
    return results


def main(argv: Sequence[str]) -> None:
    export_dir, inputs_path, outputs_path = argv
    with np.load(inputs_path) as inputs:
        results = run_cases(export_dir, {key: inputs[key] for key in inputs.files})
    np.savez(outputs_path, **results)
    if "hacnn_tf" in sys.modules:
        raise SystemExit("the self-check imported hacnn_tf: the export is not standalone")


if __name__ == "__main__":
    main(sys.argv[1:])
