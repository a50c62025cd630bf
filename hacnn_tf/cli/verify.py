"""`hacnn-tf verify OUT [FORMAT...]`: check exported format folders before deploying them (TF Serving and the
other runtimes load what they are given without checking): every file against the sha256 of the folder's
manifest.json, nothing missing or added, no manifest path or symbolic link leaving the folder, and the model of a
SavedModel or ONNX format scanned for ops that hacnn-tf's exports never hold (hacnn_tf.security).

Examples:
  hacnn-tf verify exported                                   # every OUT/<format>-<precision>/ folder
  hacnn-tf verify exported saved_model-fp32 onnx-fp32
  hacnn-tf verify exported/saved_model-fp32                  # one format folder

One line per verified format, with the sha256 of its manifest.json (record it at export time to check later that
the manifest itself is the one you exported); a folder that fails exits 2 with one line naming the file.
"""

from __future__ import annotations

import argparse
import pathlib


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "out",
        help="the folder `hacnn-tf export` wrote into (holding <format>-<precision>/ folders), or one format folder",
    )
    parser.add_argument(
        "formats",
        nargs="*",
        metavar="FORMAT",
        help="format folders under OUT, e.g. saved_model-fp32 onnx-fp32 (default: every folder in "
        "OUT holding a manifest.json)",
    )


def format_folders(out: pathlib.Path, formats: list[str]) -> list[pathlib.Path]:
    """The format folders that `hacnn-tf verify OUT FORMAT...` checks, or `InputFileError` naming what is missing."""
    from hacnn_tf.errors import InputFileError
    from hacnn_tf.manifest import MANIFEST

    if not out.is_dir():
        raise InputFileError(f"{out}: no such folder: give the folder `hacnn-tf export` wrote into")
    if (out / MANIFEST).is_file():
        if formats:
            raise InputFileError(
                f"{out} is a format folder (it holds {MANIFEST}): name its parent to choose "
                f"formats, or leave {' '.join(formats)} out"
            )
        return [out]
    if not formats:
        folders = sorted(path for path in out.iterdir() if (path / MANIFEST).is_file())
        if not folders:
            raise InputFileError(
                f"{out}: no format folder (a folder holding {MANIFEST}) in it: give the folder "
                "`hacnn-tf export` wrote into"
            )
        return folders
    missing = [name for name in formats if not (out / name / MANIFEST).is_file()]
    if missing:
        raise InputFileError(
            f"{', '.join(str(out / name / MANIFEST) for name in missing)}: not found: name format "
            f"folders of {out} (`ls {out}`)"
        )
    return [out / name for name in dict.fromkeys(formats)]


def verify_folder(folder: pathlib.Path) -> str:
    """Verifies one format folder (manifest, then the scan of its model); returns the line `hacnn-tf verify`
    prints, or raises `ManifestError` / `UntrustedModelError` naming the file."""
    from hacnn_tf.manifest import MANIFEST, manifest_model, sha256_of, verify_manifest
    from hacnn_tf.runtime.checks import check_model

    files = len(verify_manifest(folder)["files"])
    model = manifest_model(folder)
    scan = check_model(model, verify=False).scan
    scanned = (
        f"{len(scan.all_op_types)} op types, all of hacnn-tf's exports"
        if scan is not None
        else "not scanned (the scan reads SavedModel and ONNX files)"
    )
    return (
        f"verified {folder}: {MANIFEST} (sha256 {sha256_of(folder / MANIFEST)}) matches its {files} "
        f"file{'s' * (files != 1)}; "
        f"{model.relative_to(folder).as_posix()}: {scanned}"
    )


def run(args: argparse.Namespace) -> None:
    from hacnn_tf.errors import UserError

    failed = {}
    for folder in format_folders(pathlib.Path(args.out), args.formats):
        try:
            print(verify_folder(folder), flush=True)
        except UserError as error:
            failed[folder] = error
    if failed:
        error, others = next(iter(failed.values())), list(failed)[1:]
        if not others:
            raise error
        raise UserError(
            f"{error} (and {len(others)} more format{'s' if len(others) > 1 else ''} failed: "
            f"{', '.join(str(folder) for folder in others)}; `hacnn-tf verify` each for its file)"
        )
