"""Runtimes behind one `Embedder` protocol, and `load_embedder(path)`, which recognises the file."""

from __future__ import annotations

import importlib
import os
import pathlib

from hacnn_tf.errors import CheckpointError, InputFileError, UserError, require_extras
from hacnn_tf.manifest import MANIFEST, manifest_model
from hacnn_tf.runtime.base import Embedder
from hacnn_tf.runtime.checks import check_model

# What `load_embedder` builds for a path: "module:class" under hacnn_tf.runtime, imported only when used.
_BY_SUFFIX = {
    ".tflite": "tflite:TFLiteEmbedder",
    ".onnx": "onnx:ONNXEmbedder",
    ".xml": "openvino:OpenVINOEmbedder",
}
# The package extra each of them runs with.
_EXTRA_BY_SUFFIX = {".tflite": "litert", ".onnx": "onnx", ".xml": "openvino"}
_CHECKPOINT_SUFFIXES = (".keras", ".pth", ".tar", ".pt")


def load_embedder(path: str | os.PathLike, verify: bool = True, trusted: bool = False, **kwargs) -> Embedder:
    """An `Embedder` for `path`: a `.keras` file or torchreid checkpoint (`KerasEmbedder`), a SavedModel folder
    (`SavedModelEmbedder`), a file of another runtime recognised by its suffix (`.tflite`: LiteRT, `.onnx`:
    ONNX Runtime, `.xml`: OpenVINO IR), or an export format folder (`OUT/tflite-int8`, what `export_all` writes),
    whose `manifest.json` names the model file or folder to load. `kwargs` go to the embedder (e.g. `batch_size`,
    `num_threads`).

    Before anything of the model runs (`hacnn_tf.runtime.checks.check_model`): with `verify` (the default), a model
    in an export format folder (the folder itself, a file of it, a SavedModel version folder under it) is checked
    against the folder's `manifest.json` (every file's sha256, nothing missing or added, no path or link leaving the
    folder); unless `trusted`, a SavedModel folder and an `.onnx` file are scanned for ops hacnn-tf's exports never
    hold (`hacnn_tf.security`). `.keras` files always load in Keras's safe mode.

    Raises `InputFileError` (a `FileNotFoundError`) for a missing path, `CheckpointError` (a `ValueError`) for a
    file or folder of no format this project loads, `ManifestError` (a `CheckpointError`) / `UntrustedModelError`
    (a `ValueError`), naming the file, where a check fails."""
    path = pathlib.Path(path)
    if not path.exists():
        raise InputFileError(
            f"{path}: no such model file or folder; give a .keras or torchreid checkpoint, a "
            "SavedModel version folder or an export format folder"
        )
    check_model(path, verify=verify, trusted=trusted)
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            from hacnn_tf.runtime.saved_model import SavedModelEmbedder

            return SavedModelEmbedder(path, **kwargs)
        if (path / MANIFEST).is_file():  # verified above with the folder: scan the model it names
            return load_embedder(manifest_model(path), verify=False, trusted=trusted, **kwargs)
        formats = sorted(child.name for child in path.iterdir() if (child / MANIFEST).is_file())
        hint = (
            f"give one of the export format folders it holds: {', '.join(formats)}"
            if formats
            else "give a SavedModel version folder (OUT/saved_model-fp32/hacnn/1), an export format folder "
            "(OUT/tflite-fp32) or a model file"
        )
        raise CheckpointError(
            f"{path}: a folder without saved_model.pb or {MANIFEST} is no model this project can load; {hint}"
        )
    if path.suffix in _CHECKPOINT_SUFFIXES:
        from hacnn_tf.convert.checkpoint import load_checkpoint
        from hacnn_tf.runtime.keras_model import KerasEmbedder

        return KerasEmbedder(load_checkpoint(path, kwargs.pop("align_corners", False)), **kwargs)
    if path.suffix in _BY_SUFFIX:
        module, name = _BY_SUFFIX[path.suffix].split(":")
        require_extras(f"running {path}", _EXTRA_BY_SUFFIX[path.suffix])
        embedder_class = getattr(importlib.import_module(f"hacnn_tf.runtime.{module}"), name)
        try:
            return embedder_class(path, **kwargs)
        except (UserError, TypeError):  # our own refusals; a wrong keyword argument is the caller's bug
            raise
        except Exception as error:  # the runtime's parser: a truncated file, another file under this suffix
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise CheckpointError(
                f"{path}: not a {path.suffix} model the runtime can read ({type(error).__name__}: {reason[:200]}); "
                "the file is truncated or not a model: export it again with hacnn-tf export"
            ) from error
    raise CheckpointError(
        f"{path}: unknown model format {path.suffix!r}; expected a .keras/.pth checkpoint, a "
        f"SavedModel folder, an export format folder or one of {sorted(_BY_SUFFIX)}"
    )


__all__ = ["Embedder", "load_embedder"]
