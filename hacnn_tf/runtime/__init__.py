"""Runtimes behind one `Embedder` protocol, and `load_embedder(path)`, which recognises the file."""

from __future__ import annotations

import importlib
import os
import pathlib

from hacnn_tf.runtime.base import Embedder

# What `load_embedder` builds for a path: "module:class" under hacnn_tf.runtime, imported only when used.
_BY_SUFFIX = {
    ".tflite": "tflite:TFLiteEmbedder",
    ".onnx": "onnx:ONNXEmbedder",
    ".xml": "openvino:OpenVINOEmbedder",
}
_CHECKPOINT_SUFFIXES = (".keras", ".pth", ".tar", ".pt")


def load_embedder(path: str | os.PathLike, **kwargs) -> Embedder:
    """An `Embedder` for `path`: a `.keras` file or torchreid checkpoint (`KerasEmbedder`), a SavedModel folder
    (`SavedModelEmbedder`), or a file of another runtime recognised by its suffix (`.tflite`: LiteRT, `.onnx`:
    ONNX Runtime, `.xml`: OpenVINO IR). `kwargs` go to the
    embedder (e.g. `batch_size`, `num_threads`)."""
    path = pathlib.Path(path)
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            from hacnn_tf.runtime.saved_model import SavedModelEmbedder

            return SavedModelEmbedder(path, **kwargs)
        raise ValueError(f"{path}: a folder without saved_model.pb is no model this project can load")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file or folder")
    if path.suffix in _CHECKPOINT_SUFFIXES:
        from hacnn_tf.convert.checkpoint import load_checkpoint
        from hacnn_tf.runtime.keras_model import KerasEmbedder

        return KerasEmbedder(load_checkpoint(path, kwargs.pop("align_corners", False)), **kwargs)
    if path.suffix in _BY_SUFFIX:
        module, name = _BY_SUFFIX[path.suffix].split(":")
        return getattr(importlib.import_module(f"hacnn_tf.runtime.{module}"), name)(path, **kwargs)
    raise ValueError(f"{path}: unknown model format {path.suffix!r}; expected a .keras/.pth checkpoint, a SavedModel "
                     f"folder or one of {sorted(_BY_SUFFIX)}")


__all__ = ["Embedder", "load_embedder"]
