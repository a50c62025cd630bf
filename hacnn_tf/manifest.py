"""`manifest.json` of an exported format's folder: what it is, what it takes, and the sha256 of every file.

Written by the exporters (`hacnn_tf.export`) and read by the runtimes (`hacnn_tf.runtime.load_embedder` on a format
folder, which also verifies it), so it sits below both in the import graph: JSON and file hashes only."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

from hacnn_tf.errors import CheckpointError, ManifestError
from hacnn_tf.io_utils import atomic_output

MANIFEST = "manifest.json"
# How many folders above a model file or folder `manifest_folder` looks for its format folder's manifest.
MANIFEST_DEPTH = 3


def sha256_of(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(
    folder: str | os.PathLike,
    format: str,
    precision: str,
    input_spec: Mapping[str, Any],
    exporter_versions: Mapping[str, str],
    model: str | None = None,
    notes: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    """Writes `<folder>/manifest.json` (atomically) and returns its path:

    `{"format", "precision", "model" (the file or folder to load, relative to `folder`), "input" (`input_spec`:
    name, dtype, shape with -1 for a dynamic dimension, value range), "exporters" (`{package: version}`),
    "files": {relative path: sha256} of every file under `folder` but the manifest, "notes"}`.
    """
    folder = pathlib.Path(folder)
    files = {
        path.relative_to(folder).as_posix(): sha256_of(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path != folder / MANIFEST
    }
    if model is not None and not (folder / model).exists():
        raise FileNotFoundError(f"{folder / model}: the manifest's model is not in {folder}")
    manifest = {
        "format": format,
        "precision": precision,
        "model": model,
        "input": dict(input_spec),
        "exporters": dict(exporter_versions),
        "files": files,
        "notes": dict(notes or {}),
    }
    path = folder / MANIFEST
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: str | os.PathLike) -> dict:
    """`<folder>/manifest.json` as written by `write_manifest` (not checked against the files: `verify_manifest`)."""
    return json.loads((pathlib.Path(folder) / MANIFEST).read_text(encoding="utf-8"))


def manifest_model(folder: str | os.PathLike) -> pathlib.Path:
    """What `load_embedder` reads in an exported format folder: the `model` its manifest names, under `folder`; a
    `CheckpointError` naming the manifest when it is no JSON object with a `model` string (a `ManifestError` when
    that path is absolute or climbs out of `folder`)."""
    folder = pathlib.Path(folder)
    try:
        model = read_manifest(folder).get("model")
    except (ValueError, AttributeError) as error:  # not JSON, not UTF-8, not an object
        raise CheckpointError(
            f"{folder / MANIFEST}: not a manifest of an export ({error}); export the folder again with hacnn-tf export"
        ) from None
    if not isinstance(model, str):
        raise CheckpointError(
            f"{folder / MANIFEST}: names no model to load (its 'model' is {model!r}); export the "
            "folder again with hacnn-tf export"
        )
    if not _inside(model):
        raise ManifestError(
            f"{folder / MANIFEST} names {model!r}, a path outside {folder} (absolute, or with '..'): "
            "refusing the folder; export again"
        )
    return folder / model


def manifest_folder(path: str | os.PathLike) -> pathlib.Path | None:
    """The exported format folder that the model file or folder `path` belongs to: the nearest of `path` itself (a
    folder) and the `MANIFEST_DEPTH` folders above it that holds a hacnn-tf `manifest.json` (a JSON object with
    `format` and `files`; a SavedModel version folder `saved_model-fp32/hacnn/1` sits two levels below its format
    folder), as an absolute path; None for a model outside an export. A `manifest.json` that is not JSON is
    refused (`ManifestError`) rather than passed over."""
    path = pathlib.Path(path).absolute()
    candidates = ([path] if path.is_dir() else []) + list(path.parents)[:MANIFEST_DEPTH]
    for folder in candidates:
        file = folder / MANIFEST
        if not file.is_file():
            continue
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ManifestError(
                f"{file}: not a manifest hacnn-tf can read ({error}): copy the format folder again "
                "from the export, or export again"
            ) from None
        if isinstance(manifest, dict) and {"format", "files"} <= manifest.keys():
            return folder
    return None


def verify_manifest(folder: str | os.PathLike) -> dict:
    """Reads `<folder>/manifest.json` and checks every listed file's sha256, that no file is missing or was added,
    that its paths are relative and stay inside `folder` (no absolute path, no `..`) and that no symbolic link in
    `folder` leads out of it; returns the manifest.

    Raises:
        ManifestError: one line naming the first file that differs (changed, then missing, then added) and listing
            all of them, or the path or link that leaves the folder.
    """
    folder = pathlib.Path(folder)
    manifest = _checked_manifest(folder)
    present = _present_files(folder)
    listed = manifest["files"]
    changed = sorted(name for name in listed if name in present and sha256_of(folder / name) != listed[name])
    problems = {"missing": sorted(set(listed) - present), "unlisted": sorted(present - set(listed)), "changed": changed}
    if any(problems.values()):
        kind = next(kind for kind in ("changed", "missing", "unlisted") if problems[kind])
        raise ManifestError(
            f"{folder / problems[kind][0]}: {_PROBLEMS[kind]} (against {folder / MANIFEST}: "
            + "; ".join(f"{kind} {names}" for kind, names in problems.items() if names)
            + "); copy the format folder again from the export, or export again"
        )
    return manifest


# How `verify_manifest` names the first file that differs.
_PROBLEMS = {
    "changed": "changed since the export, its sha256 is not the manifest's",
    "missing": "listed in the manifest but missing",
    "unlisted": "added to the folder after the export",
}


def _checked_manifest(folder: pathlib.Path) -> dict:
    """`read_manifest(folder)`, or `ManifestError` where it is not JSON of the form `write_manifest` writes, or
    names a path (a file or the model) that is absolute or climbs out of `folder` with `..`."""
    file = folder / MANIFEST
    if not file.is_file():
        raise ManifestError(
            f"{file}: no manifest (a folder of hacnn-tf export holds one): export again, or name "
            "the format folder itself"
        )
    try:
        manifest = read_manifest(folder)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(
            f"{file}: not JSON ({error}): copy the format folder again from the export, or export again"
        ) from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise ManifestError(f'{file}: no "files" table of sha256 sums: not a manifest hacnn-tf wrote')
    for name in [*files, *([manifest["model"]] if manifest.get("model") is not None else [])]:
        if not _inside(name):
            raise ManifestError(
                f"{file} names {name!r}, a path outside {folder} (absolute, or with '..'): refusing "
                "the folder; export again"
            )
    return manifest


def _inside(name: object) -> bool:
    """Whether a manifest's path is relative and stays inside its folder, on POSIX and on Windows."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return False
    posix, windows = pathlib.PurePosixPath(name), pathlib.PureWindowsPath(name)
    return not (posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in posix.parts)


def _present_files(folder: pathlib.Path) -> set[str]:
    """The files under `folder` but the manifest, as POSIX paths relative to it; `ManifestError` for a symbolic
    link (to a file or a folder, anywhere under `folder`) whose target is outside `folder`. Links to folders are not
    followed."""
    root = folder.resolve()
    present = set()
    for directory, folders, files in os.walk(folder):
        base = pathlib.Path(directory)
        for name in (*folders, *files):
            path = base / name
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                raise ManifestError(
                    f"{path}: a symbolic link to {path.resolve()}, outside {folder}: refusing the "
                    "folder (copy the files themselves into it)"
                )
        present.update((base / name).relative_to(folder).as_posix() for name in files if (base / name).is_file())
    present.discard(MANIFEST)
    return present
