"""Convert an exported SavedModel to TFLite (fp32, fp16, dynamic, int8) and write the parity report.

Example: python -m export.tflite exported/saved_model-fp32/hacnn/1 runs/market/best.keras market1501 /data/reid \
    --out tflite/
(`hacnn-tf export CHECKPOINT OUT --format tflite --saved-model SAVED_MODEL --dataset ... --root ... --report`:
OUT/tflite-<variant>/hacnn.tflite with manifests, and OUT/parity.{csv,md}.)
"""

from __future__ import annotations

import argparse

from hacnn_tf.cli import main as cli_main
from hacnn_tf.cli.export import TFLITE_VARIANTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("saved_model", help="version folder written by export.saved_model")
    parser.add_argument("checkpoint", help="the Keras checkpoint it was exported from (the parity reference)")
    parser.add_argument("dataset", help="data set for calibration (train split) and parity (query/gallery)")
    parser.add_argument("root")
    parser.add_argument("--out", default="tflite", help="output folder of the tflite-<variant>/ folders and parity.*")
    parser.add_argument("--variants", nargs="+", default=list(TFLITE_VARIANTS), choices=TFLITE_VARIANTS)
    parser.add_argument("--calibration-images", type=int, default=200)
    args = parser.parse_args(argv)
    return cli_main(
        [
            "export",
            args.checkpoint,
            args.out,
            "--format",
            "tflite",
            "--tflite-variants",
            *args.variants,
            "--saved-model",
            args.saved_model,
            "--dataset",
            args.dataset,
            "--root",
            args.root,
            "--calibration-images",
            str(args.calibration_images),
            "--report",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
