"""Convert an exported SavedModel to TFLite (fp32, fp16, dynamic, int8) and write the parity report.

Example: python -m export.tflite exported/hacnn/1 runs/market/best.keras market1501 /data/reid --out tflite/
(The same as `hacnn-tf export CHECKPOINT OUT --format tflite --dataset ... --root ...`, from an existing SavedModel.)
"""

from __future__ import annotations

import argparse

from hacnn_tf.cli.export import TFLITE_VARIANTS, export_tflite
from hacnn_tf.convert.checkpoint import load_checkpoint
from hacnn_tf.data.datasets import load_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("saved_model", help="version folder written by export.saved_model")
    parser.add_argument("checkpoint", help="the Keras checkpoint it was exported from (the parity reference)")
    parser.add_argument("dataset", help="data set for calibration (train split) and parity (query/gallery)")
    parser.add_argument("root")
    parser.add_argument("--out", default="tflite", help="output folder for hacnn_<variant>.tflite and parity.*")
    parser.add_argument("--variants", nargs="+", default=list(TFLITE_VARIANTS), choices=TFLITE_VARIANTS)
    parser.add_argument("--calibration-images", type=int, default=200)
    args = parser.parse_args(argv)
    export_tflite(load_checkpoint(args.checkpoint), args.saved_model, args.out, args.variants,
                  load_dataset(args.dataset, args.root), args.calibration_images)


if __name__ == "__main__":
    main()
