"""`hacnn-tf demo [--workdir DIR]`: generate the synthetic data set, train and evaluate HA-CNN on it (CPU, a few
minutes), match its test identities in synthetic camera frames, export SavedModel and TFLite with a parity report,
write figures."""

from __future__ import annotations

import argparse

from hacnn_tf.cli.options import add_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default="runs/demo", help="where data, checkpoints, exports and figures go")
    parser.add_argument("--config", default="demo_synthetic", help="packaged config name or file")
    add_overrides(parser)
    parser.add_argument("--no-export", dest="export", action="store_false", help="skip the SavedModel/TFLite export")


def run(args: argparse.Namespace) -> None:
    import json
    import pathlib
    import time

    import pandas as pd

    from hacnn_tf.configs import resolve_config
    from hacnn_tf.jobs.demo import run_demo

    started = time.perf_counter()
    table = run_demo(args.workdir, resolve_config(args.config), args.overrides, export=args.export)
    print("\nRe-identification on the synthetic test split (fractions; Market-1501 protocol):")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    frames = json.loads((pathlib.Path(args.workdir) / "frames_demo" / "frames_metrics.json").read_text())
    print(f"\nIn camera frames (frames_demo/, {frames['boxes']} boxes of {frames['identities']} test identities in "
          f"{frames['frames']} frames): cross-camera Rank-1 {frames['cross_camera_rank1']:.3f} "
          f"({frames['queries']} boxes), frame-to-frame association {frames['association_accuracy']:.3f} "
          f"({frames['associations']} links)")
    parity = pathlib.Path(args.workdir) / "export" / "parity.csv"
    if parity.is_file():
        print("\nExported models against the Keras model on the same images (export/parity.csv):")
        print(pd.read_csv(parity, index_col=0).to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"\n{time.perf_counter() - started:.0f} s; written to {args.workdir}/metrics.csv and metrics.md")
