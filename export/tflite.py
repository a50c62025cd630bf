"""Convert an exported SavedModel to TFLite (fp32, fp16, dynamic, int8) and write the parity report.

Example: python -m export.tflite exported/hacnn/1 runs/market/best.keras market1501 /data/reid --out tflite/
"""

from __future__ import annotations

import argparse
import pathlib

from hacnn_tf.data.datasets import load_dataset
from hacnn_tf.convert.checkpoint import load_checkpoint
from hacnn_tf.export.parity import load_pixels, parity_report
from hacnn_tf.export.tflite import QUANTIZATIONS, convert_tflite_variants


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("saved_model", help="version folder written by export.saved_model")
    parser.add_argument("checkpoint", help="the Keras checkpoint it was exported from (the parity reference)")
    parser.add_argument("dataset", help="data set for calibration (train split) and parity (query/gallery)")
    parser.add_argument("root")
    parser.add_argument("--out", default="tflite", help="output folder for hacnn_<variant>.tflite and parity.*")
    parser.add_argument("--variants", nargs="+", default=list(QUANTIZATIONS), choices=QUANTIZATIONS)
    parser.add_argument("--calibration-images", type=int, default=200)
    args = parser.parse_args(argv)
    model = load_checkpoint(args.checkpoint)
    data = load_dataset(args.dataset, args.root)
    out = pathlib.Path(args.out)
    calibration = data.train.sample(min(args.calibration_images, len(data.train)), random_state=0)
    representative = load_pixels(calibration, model.input_size) if "int8" in args.variants else None
    paths = convert_tflite_variants(args.saved_model, {v: out / f"hacnn_{v}.tflite" for v in args.variants},
                                    representative)
    table = parity_report(model, paths, data.query, data.gallery, out / "parity", saved_model_dir=args.saved_model)
    print(table.to_string(float_format=lambda v: f"{v:.6g}"))
    print(f"written to {out}/parity.csv and parity.md")


if __name__ == "__main__":
    main()
