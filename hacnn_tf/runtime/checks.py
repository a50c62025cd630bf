"""What `load_embedder` checks before a model file runs: that it is the file that was exported (the sha256 sums of
its format folder's `manifest.json`) and, for a file that is not trusted, that it holds nothing but what hacnn-tf's
exports hold (`hacnn_tf.security`'s scan of SavedModel folders and ONNX files). TFLite and OpenVINO files are not
scanned: only their checksums are checked, so load only those you exported yourself; `.keras` files load in Keras's
safe mode and torchreid checkpoints with `torch.load(weights_only=True)` instead."""

from __future__ import annotations

import dataclasses
import os
import pathlib

from hacnn_tf.manifest import manifest_folder, verify_manifest
from hacnn_tf.security import ModelScanReport, scan_onnx, scan_saved_model


@dataclasses.dataclass(frozen=True)
class ModelCheck:
    """The checks a model path passed: `folder` is the format folder whose manifest matched every file (None: no
    manifest found, or not verified), `files` how many files it lists, `scan` the op types of a scanned SavedModel
    or ONNX file (None: trusted, or a format the scan does not read)."""

    path: pathlib.Path
    folder: pathlib.Path | None = None
    files: int = 0
    scan: ModelScanReport | None = None


def check_model(path: str | os.PathLike, verify: bool = True, trusted: bool = False) -> ModelCheck:
    """Checks the model file or folder `path` before it is loaded; reads it, runs nothing of it.

    Args:
        path: what `load_embedder` loads: a SavedModel version folder, a `.onnx`, `.tflite`, `.xml`, `.keras`...
        verify: where `path` lies in an exported format folder (`manifest_folder`), check the whole folder against
            its manifest (`verify_manifest`: every file's sha256, nothing missing or added, no path or link
            leaving it). A model outside an export has nothing to be checked against and passes.
        trusted: skip the scan. Without it a SavedModel folder (its `saved_model.pb`) and an `.onnx` file are
            refused where they hold an op, domain or external data that hacnn-tf's exports never hold.

    Raises:
        ManifestError: a file of the folder differs from the manifest (named), or a path or link leaves it.
        UntrustedModelError: the scan found what our exports never hold (the op, where, the file).
    """
    path = pathlib.Path(path)
    folder = manifest_folder(path) if verify else None
    files = len(verify_manifest(folder)["files"]) if folder is not None else 0
    scan = None
    if not trusted:
        if path.is_dir() and (path / "saved_model.pb").is_file():
            scan = scan_saved_model(path)
        elif path.suffix == ".onnx" and path.is_file():
            scan = scan_onnx(path)
    return ModelCheck(path, folder, files, scan)
