"""`hacnn-tf export CHECKPOINT OUT`: deployment formats of a checkpoint, each checked against the Keras model.

Examples:
  hacnn-tf export runs/market/best.keras exported --format saved_model --warmup-images runs/demo/data/query
  hacnn-tf export runs/market/best.keras exported --format saved_model tflite --dataset market1501 --root /data/reid

saved_model: OUT/<model-name>/<version>/ for TF Serving (self-checked under TF Serving's session loader).
tflite: OUT/tflite/hacnn_<variant>.tflite for the --tflite-variants, from that SavedModel; int8 is calibrated on
training images of --dataset, and with --dataset a parity report against the Keras model goes to OUT/tflite/parity.*
"""

from __future__ import annotations

import argparse

from hacnn_tf.cli.options import add_align_corners, add_dataset, dataset_options

FORMATS = ("saved_model", "tflite")
TFLITE_VARIANTS = ("fp32", "fp16", "dynamic", "int8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help=".keras checkpoint or torchreid .pth/.pth.tar/.pt")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--format", nargs="+", choices=(*FORMATS, "all"), default=["saved_model"],
                        help="formats to write (tflite needs the saved_model, which is then written too)")
    parser.add_argument("--model-name", default="hacnn")
    parser.add_argument("--version", type=int, default=1, help="TF Serving version folder")
    parser.add_argument("--warmup-images", help="folder of JPEG/PNG images for TF Serving warm-up requests")
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="refuse encoded images larger than this many pixels (default 4096 x 4096)")
    parser.add_argument("--tflite-variants", nargs="+", choices=TFLITE_VARIANTS, default=list(TFLITE_VARIANTS))
    parser.add_argument("--calibration-images", type=int, default=200, help="int8 calibration images")
    add_dataset(parser, required=False)
    add_align_corners(parser)


def warmup_files(folder: str) -> list[bytes]:
    import pathlib

    files = sorted(p for p in pathlib.Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:8]
    if not files:
        raise SystemExit(f"--warmup-images: no .jpg/.png files in {folder}")
    return [p.read_bytes() for p in files]


def run(args: argparse.Namespace) -> None:
    import pathlib

    from hacnn_tf.convert.checkpoint import load_checkpoint
    from hacnn_tf.export.saved_model import export_saved_model

    formats = set(FORMATS) if "all" in args.format else set(args.format)
    if "tflite" in formats and "int8" in args.tflite_variants and not args.dataset:
        raise SystemExit("export: the int8 TFLite variant is calibrated on training images: give --dataset/--root "
                         "or leave int8 out of --tflite-variants")
    if args.calibration_images < 1:
        raise SystemExit(f"export: --calibration-images must be positive; got {args.calibration_images}")
    if bool(args.dataset) != bool(args.root):
        raise SystemExit("export: --dataset and --root go together")
    model = load_checkpoint(args.checkpoint, args.align_corners)
    out = pathlib.Path(args.out)
    options = {} if args.max_pixels is None else {"max_pixels": args.max_pixels}
    warmup = warmup_files(args.warmup_images) if args.warmup_images else None
    saved_model = export_saved_model(model, out, args.model_name, args.version, warmup_images=warmup, **options)
    print(f"wrote {saved_model} (self-checked under tf.saved_model.load and TF Serving's session loader)")
    if "tflite" not in formats:
        return
    from hacnn_tf.data.datasets import load_dataset

    data = load_dataset(args.dataset, args.root, **dataset_options(args)) if args.dataset else None
    export_tflite(model, saved_model, out / "tflite", args.tflite_variants, data, args.calibration_images)


def export_tflite(model, saved_model, out_dir, variants, data=None, calibration_images: int = 200) -> dict:
    """`out_dir/hacnn_<variant>.tflite` from the SavedModel; int8 calibrated on `data.train` images; with `data`, the
    parity report against `model` on its query/gallery split goes to `out_dir/parity.{csv,md}`."""
    import pathlib

    from hacnn_tf.data.pipeline import load_pixels
    from hacnn_tf.export.parity import parity_report
    from hacnn_tf.export.tflite import convert_tflite_variants

    out_dir = pathlib.Path(out_dir)
    representative = None
    if "int8" in variants:
        if data is None:
            raise SystemExit("export: the int8 TFLite variant is calibrated on training images: give a data set")
        calibration = data.train.sample(min(calibration_images, len(data.train)), random_state=0)
        representative = load_pixels(calibration, model.input_size)
    paths = convert_tflite_variants(saved_model, {v: out_dir / f"hacnn_{v}.tflite" for v in variants}, representative)
    for path in paths.values():
        print(f"wrote {path}")
    if data is not None:
        table = parity_report(model, paths, data.query, data.gallery, out_dir / "parity", saved_model_dir=saved_model)
        print(table.to_string(float_format=lambda v: f"{v:.6g}"))
        print(f"written to {out_dir}/parity.csv and parity.md")
    return paths
