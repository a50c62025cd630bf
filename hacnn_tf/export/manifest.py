"""`manifest.json` of an exported format's folder: what it is, what it takes, and the sha256 of every file."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from importlib import metadata
from typing import Any, Iterable, Mapping

from hacnn_tf.io_utils import atomic_output

MANIFEST = "manifest.json"


def sha256_of(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """`{distribution: installed version}` of the exporters, e.g. `package_versions(["tensorflow-cpu", "tf2onnx"])`;
    a distribution that is not installed is left out."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_manifest(folder: str | os.PathLike, format: str, precision: str, input_spec: Mapping[str, Any],
                   exporter_versions: Mapping[str, str], model: str | None = None,
                   notes: Mapping[str, Any] | None = None) -> pathlib.Path:
    """Writes `<folder>/manifest.json` (atomically) and returns its path:

    `{"format", "precision", "model" (the file or folder to load, relative to `folder`), "input" (`input_spec`:
    name, dtype, shape with -1 for a dynamic dimension, value range), "exporters" (`{package: version}`),
    "files": {relative path: sha256} of every file under `folder` but the manifest, "notes"}`.
    """
    folder = pathlib.Path(folder)
    files = {path.relative_to(folder).as_posix(): sha256_of(path)
             for path in sorted(folder.rglob("*")) if path.is_file() and path.name != MANIFEST}
    if model is not None and not (folder / model).exists():
        raise FileNotFoundError(f"{folder / model}: the manifest's model is not in {folder}")
    manifest = {"format": format, "precision": precision, "model": model, "input": dict(input_spec),
                "exporters": dict(exporter_versions), "files": files, "notes": dict(notes or {})}
    path = folder / MANIFEST
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: str | os.PathLike) -> dict:
    """`<folder>/manifest.json` as written by `write_manifest` (not checked against the files: `verify_manifest`)."""
    return json.loads((pathlib.Path(folder) / MANIFEST).read_text(encoding="utf-8"))


def verify_manifest(folder: str | os.PathLike) -> dict:
    """Reads `<folder>/manifest.json` and checks every listed file's sha256 (and that no file is missing or was
    added); returns the manifest or raises `ValueError` naming the files that differ."""
    folder = pathlib.Path(folder)
    manifest = read_manifest(folder)
    present = {path.relative_to(folder).as_posix() for path in folder.rglob("*")
               if path.is_file() and path.name != MANIFEST}
    listed = manifest["files"]
    changed = sorted(name for name in listed if name in present and sha256_of(folder / name) != listed[name])
    problems = {"missing": sorted(set(listed) - present), "unlisted": sorted(present - set(listed)),
                "changed": changed}
    if any(problems.values()):
        raise ValueError(f"{folder}: files differ from {MANIFEST}: "
                         + "; ".join(f"{kind} {names}" for kind, names in problems.items() if names))
    return manifest
