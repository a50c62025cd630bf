"""`hacnn-tf export CHECKPOINT OUT`: deployment formats of a checkpoint (`hacnn_tf.export.export_all`), each in its
folder OUT/<format>-<precision>/ with a manifest.json, checked against the Keras model before the folder appears.

Examples:
  hacnn-tf export runs/market/best.keras exported --warmup-images runs/demo/data/query   # exported/saved_model-fp32/
  hacnn-tf export runs/market/best.keras exported --format all --dataset market1501 --root /data/reid
  hacnn-tf export runs/market/best.keras exported --format onnx-fp32 openvino-fp32 tflite-int8 --dataset ... --root ...

--format takes names of hacnn_tf.export.FORMATS, `all` (every one of them), `saved_model` (saved_model-fp32: the
SavedModel for TF Serving in OUT/saved_model-fp32/<model-name>/<version>/) or `tflite` (tflite-<v> for each of
--tflite-variants). Every SavedModel gets --model-name, --version, --warmup-images, --max-pixels and --max-boxes (a
copied --saved-model keeps its own warm-up records, pixel and box limits). The formats quantised on calibration images
(hacnn_tf.export.all.CALIBRATED: int8 TFLite and OpenVINO) need --dataset/--root, `all` included: --calibration-images
of its training split calibrate them. With a data set the parity check runs on --check-images of its query and
gallery images (else on 16 random pixel images), and --report writes OUT/parity.{csv,md}: Rank-1/5/10 and mAP of
every written format on the whole query/gallery split. One line per written folder gives its parity; a format that
misses its target is not written and the command exits with an error naming it (the others are written).

Each format needs a package extra (TFLite: litert, ONNX: onnx, OpenVINO: openvino; SavedModels with
--warmup-images: serving; a torchreid checkpoint: torch). A missing one is refused before anything is converted,
with the `pip install` line; --skip-missing writes the formats that can be written and lists the others. A full
disk stops the export with one line naming the path and the space needed; the formats already written are kept.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence

from hacnn_tf.cli.options import add_align_corners, add_dataset, dataset_options
from hacnn_tf.cli.outputs import print_written
from hacnn_tf.export.formats import FORMATS, MODEL_NAME, TFLITE_VARIANTS

# Names of --format besides those of FORMATS: what they stand for.
ALIASES = {"saved_model": "SavedModel fp32", "tflite": "the --tflite-variants", "all": "every format"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help=".keras checkpoint or torchreid .pth/.pth.tar/.pt")
    parser.add_argument("out", help="output folder (of the OUT/<format>-<precision>/ folders)")
    parser.add_argument(
        "--format",
        nargs="+",
        choices=(*ALIASES, *FORMATS),
        default=["saved_model"],
        metavar="FORMAT",
        help=f"formats to write: {', '.join(FORMATS)}; or "
        + "; ".join(f"{name} ({meaning})" for name, meaning in ALIASES.items()),
    )
    parser.add_argument("--model-name", default=MODEL_NAME, help="model folder of the SavedModels")
    parser.add_argument("--version", type=int, default=1, help="TF Serving version folder of the SavedModels")
    parser.add_argument("--warmup-images", help="folder of JPEG/PNG images for TF Serving warm-up requests")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse encoded images larger than this many pixels (default 4096 x 4096)",
    )
    parser.add_argument(
        "--max-boxes", type=int, default=None, help="refuse embed_boxes rows of more than this many boxes (default 256)"
    )
    parser.add_argument(
        "--saved-model",
        metavar="DIR",
        help="convert from this SavedModel version folder of the checkpoint (written by "
        "export_saved_model) instead of exporting one; saved_model-fp32 is a copy of it",
    )
    parser.add_argument(
        "--tflite-variants",
        nargs="+",
        choices=TFLITE_VARIANTS,
        default=list(TFLITE_VARIANTS),
        help="the variants that --format tflite stands for",
    )
    parser.add_argument("--calibration-images", type=int, default=200, help="training images calibrating int8")
    parser.add_argument("--check-images", type=int, default=64, help="held-out images of the parity check")
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="leave out (and list) the formats whose package extras are not installed, instead of refusing the export",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="write OUT/parity.{csv,md}: Rank-1/5/10, mAP, size and latency of every written format "
        "on the query/gallery split (needs --dataset)",
    )
    add_dataset(parser, required=False)
    add_align_corners(parser)


def format_names(requested: list[str], tflite_variants: list[str]) -> list[str]:
    """The `FORMATS` names that `--format` values stand for, in order, each once."""
    aliases = {
        "all": list(FORMATS),
        "saved_model": ["saved_model-fp32"],
        "tflite": [f"tflite-{variant}" for variant in tflite_variants],
    }
    return list(dict.fromkeys(name for value in requested for name in aliases.get(value, [value])))


def warmup_files(folder: str) -> list[bytes]:
    if not pathlib.Path(folder).is_dir():
        raise SystemExit(f"--warmup-images: {folder} is not a folder")
    files = sorted(p for p in pathlib.Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:8]
    if not files:
        raise SystemExit(f"--warmup-images: no .jpg/.png files in {folder}")
    return [p.read_bytes() for p in files]


def parity_line(folder: pathlib.Path) -> str:
    """`<folder> (<model>): parity on N images: <check> max abs diff ..., mean cosine ..., min cosine ...` from the
    folder's manifest."""
    from hacnn_tf.manifest import read_manifest

    manifest = read_manifest(folder)
    checks = dict(manifest["notes"]["parity"])
    images = checks.pop("images")
    return f"wrote {folder} ({manifest['model']}): parity with the Keras model on {images} images: " + "; ".join(
        f"{check} max abs diff {r['max_abs_diff']:.2e}, mean cosine {r['mean_cosine']:.6f}, min cosine "
        f"{r['min_cosine']:.6f}"
        for check, r in checks.items()
    )


def writable_formats(formats: list[str], args: argparse.Namespace) -> list[str]:
    """`formats` whose package extras are installed, checked before anything is converted: a missing extra raises
    `MissingExtraError` with the `pip install` line, unless `--skip-missing` leaves its formats out (and says so); a
    torchreid checkpoint without the torch extra, or nothing left to write, is refused either way."""
    from hacnn_tf.convert.checkpoint import TORCH_SUFFIXES
    from hacnn_tf.errors import MissingExtraError, missing_extras
    from hacnn_tf.export.all import missing_extras_message, missing_format_extras

    missing = missing_format_extras(formats, bool(args.warmup_images), args.saved_model is not None)
    torch = pathlib.Path(args.checkpoint).suffix in TORCH_SUFFIXES and missing_extras("torch")
    if not missing and not torch:
        return formats
    writable = [name for name in formats if name not in missing]
    message = missing_extras_message(
        {**({f"reading the torchreid checkpoint {args.checkpoint}": ["torch"]} if torch else {}), **missing}
    )
    if torch or not writable or not args.skip_missing:
        hint = (
            "; or give --skip-missing to write the other formats"
            if writable and not torch and not args.skip_missing
            else ""
        )
        raise MissingExtraError(f"{message}{hint}" + ("; none of the formats can be written" if not writable else ""))
    print(f"export: skipping {', '.join(missing)} (--skip-missing): {message}", flush=True)
    return writable


def check_arguments(args: argparse.Namespace, calibrated: Sequence[str]) -> None:
    """Refuses (SystemExit, one line) the option combinations and values `run` cannot export with, before anything
    is read or converted; `calibrated`: the requested formats that need calibration images."""
    if bool(args.dataset) != bool(args.root):
        raise SystemExit("export: --dataset and --root go together")
    if calibrated and not args.dataset:
        raise SystemExit(
            f"export: {', '.join(calibrated)}: quantised on calibration images: give --dataset/--root "
            "(its training split calibrates), or leave them out of --format"
        )
    if args.report and not args.dataset:
        raise SystemExit("export: --report evaluates on the query/gallery split of --dataset/--root")
    for option in ("calibration_images", "check_images", "version", "max_pixels", "max_boxes"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise SystemExit(f"export: --{option.replace('_', '-')} must be positive; got {getattr(args, option)}")
    if args.model_name in ("", ".", "..") or "/" in args.model_name or "\\" in args.model_name:
        raise SystemExit(
            f"export: --model-name must be a folder name (the SavedModels' <model-name>/<version>/); "
            f"got {args.model_name!r}"
        )


def saved_model_options(args: argparse.Namespace) -> dict:
    """The `export_saved_model` options of the command line (model name, version, warm-up records, limits)."""
    return {
        "model_name": args.model_name,
        "version": args.version,
        "warmup_images": warmup_files(args.warmup_images) if args.warmup_images else None,
        **{
            option: getattr(args, option) for option in ("max_pixels", "max_boxes") if getattr(args, option) is not None
        },
    }


def run(args: argparse.Namespace) -> None:
    import time

    from hacnn_tf.errors import OutputError
    from hacnn_tf.export.all import CALIBRATED, remove_killed_exports

    started = time.perf_counter()

    remove_killed_exports(args.out)  # refused or not, a run cleans up after a killed export
    requested = format_names(args.format, args.tflite_variants)
    formats = writable_formats(requested, args)
    calibrated = [name for name in formats if name in CALIBRATED]
    check_arguments(args, calibrated)

    from hacnn_tf.convert.checkpoint import load_checkpoint
    from hacnn_tf.data.datasets import load_dataset
    from hacnn_tf.jobs.export import export_formats, retrieval_report

    options = saved_model_options(args)
    try:
        model = load_checkpoint(args.checkpoint, args.align_corners)
        data = load_dataset(args.dataset, args.root, **dataset_options(args)) if args.dataset else None
    except (FileNotFoundError, ValueError) as error:  # no checkpoint, a corrupt one, a wrong --root
        raise SystemExit(f"export: {error}") from None
    if calibrated and args.calibration_images > len(data.train):
        print(
            f"export: --calibration-images {args.calibration_images}: the training split has {len(data.train)} "
            "images; calibrating on all of them"
        )
    out = pathlib.Path(args.out)
    miss = failure = None
    try:
        export_formats(model, out, formats, data, args.calibration_images, args.check_images, options, args.saved_model)
    except OutputError as error:  # a full disk: the formats written before are kept
        failure = error
    except (FileExistsError, FileNotFoundError, NotADirectoryError, PermissionError, BlockingIOError) as error:
        raise SystemExit(f"export: {error}") from None
    except RuntimeError as error:  # a parity miss (the formats that passed are written) or a failed conversion
        miss = error
    written = {name: out / name for name in formats if (out / name).is_dir()}
    for folder in written.values():
        print(parity_line(folder))
    if args.report and written and failure is None:
        table = retrieval_report(model, written, data, out / "parity")
        print(table.to_string(float_format=lambda v: f"{v:.6g}"))
    print_written(
        [
            *((f"{name}", folder, "") for name, folder in written.items()),
            ("parity report", out / "parity.csv", "and parity.md"),
        ],
        started,
        verb="export finished" if miss is None and failure is None else "export stopped",
    )
    if skipped := [name for name in requested if name not in formats]:
        print(f"export: skipped (extras not installed): {', '.join(skipped)}")
    if failure is not None:
        raise failure
    if miss is not None:
        raise SystemExit(f"export: {miss}")
