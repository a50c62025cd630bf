"""Every deployment format from one SavedModel export, each in its own folder with a manifest, each checked against
the Keras model before it is put in place."""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hacnn_tf.errors import MissingExtraError, OutputError, install_hint, missing_extras
from hacnn_tf.export.converters import Conversion, Staged
from hacnn_tf.export.formats import (
    CALIBRATED,
    FAMILIES,
    FORMATS,
    HALF_PRECISION_TARGET,
    MODEL_NAME,
    REGISTRY,
    TARGETS,
)
from hacnn_tf.export.saved_model import export_saved_model, row_cosines
from hacnn_tf.io_utils import exclusive_lock, remove_partial_dirs, staging_folder
from hacnn_tf.manifest import write_manifest
from hacnn_tf.model import HACNN

# `FORMATS` (the `<family>-<precision>` folder names under `out_dir`), `CALIBRATED` and `TARGETS` (read at each
# check) come from the registry, `hacnn_tf.export.formats`.
__all__ = [
    "CALIBRATED",
    "FORMATS",
    "MODEL_NAME",
    "TARGETS",
    "export_all",
    "format_extras",
    "meets",
    "missing_extras_message",
    "missing_format_extras",
    "parity",
    "remove_killed_exports",
]
NUM_RANDOM_CHECK_IMAGES = 16
# An export's staging folder in `out_dir`: `<prefix><random>/`.
STAGING_PREFIX = ".export-all.partial-"
# Errors of the operating system while writing that stop an export as `OutputError` (the formats already written are
# kept); the full-disk ones also report the free space needed.
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def parity(embeddings: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """`{"max_abs_diff", "mean_cosine", "min_cosine"}` of `(N, D)` embeddings against the reference's."""
    cosine = row_cosines(embeddings, reference)
    return {
        "max_abs_diff": float(np.abs(embeddings - reference).max()),
        "mean_cosine": float(cosine.mean()),
        "min_cosine": float(cosine.min()),
    }


def meets(result: dict[str, float], target: tuple[float | None, float | None]) -> bool:
    """Whether a `parity` result meets a `(max abs diff, mean cosine)` target (NaN never does)."""
    max_abs_diff, mean_cosine = target
    return (
        (max_abs_diff is None or result["max_abs_diff"] <= max_abs_diff)
        and (mean_cosine is None or result["mean_cosine"] >= mean_cosine)
        and np.isfinite(list(result.values())).all()
    )


def format_extras(
    formats: Iterable[str], warmup: bool = False, copied_source: bool = False
) -> dict[str, tuple[str, ...]]:
    """`{format: the package extras it needs}` for names of `FORMATS`: `litert` for TFLite, `onnx`, `openvino`; with
    `warmup` (TF Serving warm-up requests, written and replayed with `tensorflow_serving`) `serving` for every
    SavedModel `export_all` exports, which is every format's source unless `copied_source` (`saved_model=` given,
    copied as `saved_model-fp32`)."""
    extras = {}
    for name in formats:
        family = REGISTRY[name].family
        exported = family.name == "saved_model" and not (copied_source and name == "saved_model-fp32")
        serving = ("serving",) if warmup and (exported or not copied_source) else ()
        extras[name] = (*family.extras, *serving)
    return extras


def missing_format_extras(
    formats: Iterable[str], warmup: bool = False, copied_source: bool = False
) -> dict[str, list[str]]:
    """`{format: its extras that are not installed}` for those of `formats` (`format_extras`) that cannot be written
    here; found without importing anything."""
    missing = {name: missing_extras(*extras) for name, extras in format_extras(formats, warmup, copied_source).items()}
    return {name: extras for name, extras in missing.items() if extras}


def missing_extras_message(missing: Mapping[str, Sequence[str]]) -> str:
    """`tflite-fp32, tflite-int8 need the litert extra; onnx-fp32 needs the onnx extra: pip install
    'hacnn-tf[litert,onnx]'` for `missing_format_extras`' answer."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, extras in missing.items():
        groups.setdefault(tuple(extras), []).append(name)
    parts = [
        f"{', '.join(names)} need{'s' if len(names) == 1 else ''} the {', '.join(extras)} "
        f"extra{'s' if len(extras) > 1 else ''}"
        for extras, names in groups.items()
    ]
    return f"{'; '.join(parts)}: {install_hint(*(e for extras in missing.values() for e in extras))}"


def remove_killed_exports(out_dir: str | os.PathLike) -> list[pathlib.Path]:
    """Removes the staging folders (`STAGING_PREFIX`) that killed exports left in `out_dir`, unless another export
    holds its lock (its staging folder is in use); returns what was removed. `export_all` and `hacnn-tf export`
    call it first, so that any later run, refused or not, cleans up after a killed one."""
    out_dir = pathlib.Path(out_dir)
    if not out_dir.is_dir():
        return []
    try:
        with exclusive_lock(out_dir):
            return remove_partial_dirs(out_dir, (STAGING_PREFIX,))
    except RuntimeError:  # a live export
        return []


def export_all(
    model: HACNN,
    out_dir: str | os.PathLike,
    formats: Iterable[str] = FORMATS,
    calibration_images: np.ndarray | None = None,
    check_images: np.ndarray | None = None,
    saved_model: str | os.PathLike | None = None,
    saved_model_options: Mapping[str, Any] | None = None,
) -> dict[str, pathlib.Path]:
    """Writes each of `formats` to `<out_dir>/<format>-<precision>/` with a `manifest.json` (`write_manifest`),
    converting all from one float32 SavedModel export; returns `{format: folder}`.

    - `saved_model-fp32`, `-bf16`, `-fp16`: `hacnn/1/` (`<model_name>/<version>/`), TF Serving's layout
      (`export_saved_model(precision=...)`, self-checked), for TF Serving or `SavedModelEmbedder`;
    - `tflite-fp32`, `-fp16`, `-dynamic`, `-int8`, `-uint8`: `hacnn.tflite` (batch 1, `convert_tflite`), for LiteRT
      (`TFLiteEmbedder`); `-uint8` is the int8 model taking uint8 pixels (scale 1, zero point 0);
    - `tflite_batch-fp32`: `hacnn.tflite` with a dynamic batch (`convert_tflite(..., batch=None)`);
    - `onnx-fp32`: `hacnn.onnx` (`convert_onnx`, dynamic batch), for ONNX Runtime (`ONNXEmbedder`);
    - `openvino-fp32`: `hacnn.xml` + `hacnn.bin` (`convert_openvino`, float32 weights), for `OpenVINOEmbedder`;
    - `openvino-int8`: the same quantised by NNCF on `calibration_images` (`quantize_openvino`).

    Each format is checked against `model` on `check_images` (default: `calibration_images` when given, else 16
    random pixel images): its embeddings must meet `TARGETS` (float32: max abs diff <= 1e-5, TFLite 1e-4;
    bf16/fp16: mean cosine >= 0.999; int8, uint8 and dynamic-range: mean cosine >= 0.99; OpenVINO at the CPU's
    default inference precision too). The parity goes into the manifest's notes. A folder appears (renamed from a
    staging folder) as soon as its format (or the group converted with it: the TFLite variants of one batch, the
    OpenVINO IRs) has passed; if any format misses its target, the others are still written and a `RuntimeError`
    lists the misses. Existing folders are never overwritten. An export holds a lock on `out_dir` (`flock` on the
    folder) while it runs: a second export into the same folder is refused with a `BlockingIOError`, and the
    staging folder a killed export left there is removed by the next call (`remove_killed_exports`), refused or
    not. Every temporary file, the converters' child processes' included, is written in the staging folder, and
    the children die with this process (`hacnn_tf.export.child_process`).

    Refused before anything is written: a format whose package extras are not installed (`MissingExtraError` with
    the `pip install` line, `missing_format_extras`). A full disk or another error of the operating system while
    writing (`OUTPUT_ERRNOS`) raises `OutputError` naming the path, the format that failed, the formats kept (those
    already renamed into `out_dir`) and, for a full disk, the free space and about how much more the formats not
    written need.

    Args:
        model: the float32 Keras HA-CNN.
        out_dir: the parent folder of the format folders.
        formats: names from `FORMATS`.
        calibration_images: `(N, H, W, 3)` pixels (0..255) of training images, for the `CALIBRATED` formats.
        check_images: `(N, H, W, 3)` held-out pixels for the parity check.
        saved_model: an existing `export_saved_model(model, ...)` version folder to convert from (copied for
            `saved_model-fp32`) instead of exporting one.
        saved_model_options: keyword arguments of every `export_saved_model` call (`model_name`, `version`,
            `warmup_images`, `max_pixels`, `max_boxes`; default `hacnn`, 1).
    """
    formats = tuple(dict.fromkeys(formats))
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise ValueError(f"unknown formats {unknown}; expected names from {FORMATS}")
    calibrated = [name for name in formats if name in CALIBRATED]
    if calibrated and calibration_images is None:
        raise ValueError(f"{', '.join(calibrated)} need calibration_images (training images, pixels 0..255)")
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(
            f"{out_dir} is a file: give a folder (new, or holding other formats) for the format folders",
            errno.ENOTDIR,
            str(out_dir),
        )
    if saved_model is not None and not (pathlib.Path(saved_model) / "saved_model.pb").is_file():
        raise FileNotFoundError(
            f"{saved_model} is not a SavedModel (no saved_model.pb in it): give the "
            "<model_name>/<version> folder that export_saved_model wrote"
        )
    options = {"model_name": MODEL_NAME, "version": 1, **(saved_model_options or {})}
    remove_killed_exports(out_dir)
    missing = missing_format_extras(formats, bool(options.get("warmup_images")), saved_model is not None)
    if missing:
        raise MissingExtraError(f"export_all: {missing_extras_message(missing)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(out_dir))
        except RuntimeError:
            raise BlockingIOError(
                f"{out_dir}: another export is writing into it (it holds its lock): wait for it to "
                "end, or export into another folder"
            ) from None
        remove_partial_dirs(out_dir, (STAGING_PREFIX,))  # of exports that were killed: a live one holds the lock
        existing = [str(out_dir / name) for name in formats if (out_dir / name).exists()]
        if existing:
            raise FileExistsError(f"{existing} exist: export into a new folder, or leave these formats out")
        return _export_locked(model, out_dir, formats, calibration_images, check_images, saved_model, options)


def _export_locked(
    model: HACNN,
    out_dir: pathlib.Path,
    formats: Sequence[str],
    calibration_images: np.ndarray | None,
    check_images: np.ndarray | None,
    saved_model: str | os.PathLike | None,
    options: Mapping[str, Any],
) -> dict[str, pathlib.Path]:
    """`export_all`'s conversions, checks and renames, in `out_dir` locked by this process."""
    if check_images is None:
        check_images = (
            calibration_images
            if calibration_images is not None
            else np.random.default_rng(0).uniform(0, 255, (NUM_RANDOM_CHECK_IMAGES, *model.input_size, 3))
        )
    check_images = np.asarray(check_images, np.float32)
    from hacnn_tf.runtime.keras_model import KerasEmbedder

    reference = KerasEmbedder(model)(check_images)
    written, misses, pending = {}, {}, list(formats)
    group: Sequence[str] = ()  # the formats being converted; () while the source SavedModel is
    failure = cause = None
    with staging_folder(out_dir, STAGING_PREFIX) as scratch:
        source_folder = scratch / "saved_model-fp32"
        source_size = None
        try:
            if saved_model is None:
                source = export_saved_model(model, source_folder, **options)
            else:
                source = source_folder / options["model_name"] / str(options["version"])
                shutil.copytree(saved_model, source)
            source_size = _tree_size(source)
            for group in _work_groups(formats):
                family = REGISTRY[group[0]].family
                conversion = Conversion(model, source, scratch, calibration_images, options)
                staged = family.convert(conversion, [REGISTRY[name] for name in group])
                for name in group:
                    stage = staged[name]
                    calibrated = len(calibration_images) if name in CALIBRATED else None
                    missed = _check_and_describe(name, stage, check_images, reference, calibrated)
                    misses.update(missed)
                    if not missed:
                        os.replace(stage.folder, out_dir / name)
                        written[name] = out_dir / name
                        if stage.folder == source_folder:  # the source moved with it
                            source = out_dir / name / source.relative_to(source_folder)
                    pending.remove(name)
        except Exception as error:
            failure = _output_os_error(error)
            if failure is None:
                raise
            # What the staging folder held: a lower bound of the source SavedModel's size when it did not fit.
            source_size = source_size or _tree_size(scratch)
            cause = error
    if failure is not None:
        raise _output_error(
            failure,
            out_dir,
            [n for n in group if n in pending] or pending,
            pending,
            written,
            sorted(misses),
            source_size,
            source_done=bool(group),
        ) from cause
    if misses:
        raise RuntimeError(
            f"export_all: {sorted(misses)} missed their parity targets against the Keras model "
            f"({misses}); written: {sorted(written)}"
        )
    return written


def _check_and_describe(
    name: str, stage: Staged, check_images: np.ndarray, reference: np.ndarray, calibration_images: int | None
) -> dict[str, dict[str, float]]:
    """Runs each parity check of the staged format `name` (`stage.embedders`: the format itself, and OpenVINO at
    the CPU's default precision) on `check_images` against the Keras `reference`, writes the staged folder's
    manifest with the results (and the count of `calibration_images`, if calibrated), and returns the checks that
    missed their targets, `{check: parity}` (empty: the format may be moved into place)."""
    results, missed = {}, {}
    for check, make_embedder in stage.embedders.items():
        results[check] = parity(make_embedder()(check_images), reference)
        target = TARGETS[name] if check == name else stage.targets.get(check, HALF_PRECISION_TARGET)
        if not meets(results[check], target):
            missed[check] = results[check]
    calibration = {"calibration_images": calibration_images} if calibration_images is not None else {}
    write_manifest(
        stage.folder,
        REGISTRY[name].family.name,
        REGISTRY[name].precision,
        stage.input_spec,
        stage.exporters,
        stage.model,
        {**stage.notes, **calibration, "parity": {"images": len(check_images), **results}},
    )
    return missed


def _work_groups(formats: Sequence[str]) -> list[list[str]]:
    """`formats` in the groups converted together (each SavedModel alone; the TFLite variants of one batch from one
    re-export; the OpenVINO IRs from one conversion), in the order of `FAMILIES`."""
    groups: dict[str, list[str]] = {}
    for name in formats:
        family = REGISTRY[name].family
        groups.setdefault(name if family.each_alone else family.name, []).append(name)
    return sorted(groups.values(), key=lambda names: FAMILIES.index(REGISTRY[names[0]].family))


def _tree_size(path: pathlib.Path) -> int:
    """Bytes of the files under `path`."""
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def _output_os_error(error: BaseException) -> OSError | None:
    """The error of the operating system behind an export's failure, if it is one of `OUTPUT_ERRNOS`: `error` or
    what it was raised from, or, for TensorFlow's errors and a converter child's, which carry only the text
    ("No space left on device"), one made from that text."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen if seen.errno in OUTPUT_ERRNOS else None
        seen = seen.__cause__ or seen.__context__
    text = str(error)
    for code in DISK_FULL_ERRNOS:
        if os.strerror(code) in text:  # TensorFlow's text: "<path>; No space left on device"
            path = re.search(rf"(\S+); {re.escape(os.strerror(code))}", text)
            return OSError(code, os.strerror(code), path and path[1])
    return None


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _output_error(
    error: OSError,
    out_dir: pathlib.Path,
    failed: Sequence[str],
    pending: Sequence[str],
    written: Mapping[str, pathlib.Path],
    missed: Sequence[str],
    source_size: int,
    source_done: bool,
) -> OutputError:
    """The one-line `OutputError` of an export stopped by `error`: the path, the formats `failed` (being converted)
    and not started (the rest of `pending`), those kept in `out_dir`, and, for a full disk, the free space there and
    about what the formats not written need (each about the size of the float32 SavedModel, and as much again for
    the converters' temporary files)."""
    path = error.filename or out_dir  # a file of the staging folder, removed by now, names what was being written
    not_started = [name for name in pending if name not in failed]
    what = (
        "the float32 SavedModel all formats are converted from" if not source_done else ", ".join(failed)
    ) + " failed"
    parts = [f"writing {path}: {error.strerror or error}: {what}"]
    if not_started:
        parts.append(f"not started: {', '.join(not_started)}")
    if missed:
        parts.append(f"missed their parity targets: {', '.join(missed)}")
    parts.append(f"kept in {out_dir}: {', '.join(written)}" if written else f"nothing written to {out_dir}")
    if error.errno in DISK_FULL_ERRNOS:
        free = shutil.disk_usage(out_dir).free
        needed = source_size * (len(pending) + 1 + (0 if source_done else 1))
        parts.append(
            f"{_mib(free)} free in {out_dir}, about {'more than ' if not source_done else ''}{_mib(needed)} "
            f"needed for {', '.join(pending)}: free space or export them into another folder"
        )
    else:
        parts.append(f"fix {path} (permissions, a read-only or failing disk) or export them into another folder")
    return OutputError("; ".join(parts), error.errno, os.fspath(path))
