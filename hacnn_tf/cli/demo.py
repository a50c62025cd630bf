"""`hacnn-tf demo [--workdir DIR]`: generate the synthetic data set, train and evaluate HA-CNN on it (CPU, a few
minutes), match its test identities in synthetic camera frames, export SavedModel and TFLite with a parity report,
write figures. Ends with the list of what it wrote where."""

from __future__ import annotations

import argparse
import pathlib

from hacnn_tf.cli.options import add_overrides, config_from_args
from hacnn_tf.cli.outputs import print_written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default="runs/demo", help="where data, checkpoints, exports and figures go")
    parser.add_argument("--config", default="demo_synthetic", help="packaged config name or file")
    add_overrides(parser)
    parser.add_argument("--no-export", dest="export", action="store_false", help="skip the SavedModel/TFLite export")


def demo_outputs(workdir: pathlib.Path) -> list[tuple[str, pathlib.Path, str]]:
    """`(what, path, note)` of everything the demo writes under `workdir`, in the order it writes it."""
    train, export = workdir / "train", workdir / "export"
    outputs = [
        ("data set", workdir / "data", "synthetic, Market-1501 layout"),
        ("run folder", train, ""),
        ("best model", train / "best.keras", ""),
        ("training log", train / "training_log.csv", ""),
        ("figures", workdir / "figures", ", ".join(sorted(p.name for p in (workdir / "figures").glob("*.png")))),
        ("camera frames", workdir / "frames", ""),
        ("frames demo", workdir / "frames_demo", "matched boxes, frames_metrics.json"),
    ]
    if export.is_dir():
        outputs += [(f"export {folder.name}", folder, "") for folder in sorted(export.iterdir()) if folder.is_dir()]
        outputs.append(("parity report", export / "parity.csv", "and parity.md"))
    outputs.append(("metrics", workdir / "metrics.csv", "and metrics.md"))
    return outputs


def run(args: argparse.Namespace) -> None:
    import json
    import time

    import pandas as pd

    from hacnn_tf.configs import resolve_config
    from hacnn_tf.jobs.demo import run_demo

    started = time.perf_counter()
    config_from_args(args.config, args.overrides)  # a bad config or override fails now, not after the data set
    table = run_demo(args.workdir, resolve_config(args.config), args.overrides, export=args.export)
    workdir = pathlib.Path(args.workdir)
    print("\nRe-identification on the synthetic test split (fractions; Market-1501 protocol):")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    frames = json.loads((workdir / "frames_demo" / "frames_metrics.json").read_text())
    print(
        f"\nIn camera frames (frames_demo/, {frames['boxes']} boxes of {frames['identities']} test identities in "
        f"{frames['frames']} frames): cross-camera Rank-1 {frames['cross_camera_rank1']:.3f} "
        f"({frames['queries']} boxes), frame-to-frame association {frames['association_accuracy']:.3f} "
        f"({frames['associations']} links)"
    )
    parity = workdir / "export" / "parity.csv"
    if parity.is_file():
        print("\nExported models against the Keras model on the same images (export/parity.csv):")
        print(pd.read_csv(parity, index_col=0).to_string(float_format=lambda v: f"{v:.4g}"))
    print()
    print_written(demo_outputs(workdir), started, verb="demo finished")
