"""`make demo`: train and evaluate HA-CNN on the built-in synthetic data set (CPU, a few minutes)."""

from __future__ import annotations

import argparse
import pathlib
import time

import pandas as pd

from hacnn_tf.demo import DEMO_CONFIG, run_demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", default="runs/demo", help="where data, checkpoints and results go")
    parser.add_argument("--config", default=str(DEMO_CONFIG))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--no-export", dest="export", action="store_false", help="skip SavedModel/TFLite export")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    table = run_demo(args.workdir, args.config, args.overrides, export=args.export)
    print("\nRe-identification on the synthetic test split (fractions; Market-1501 protocol):")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    parity = pathlib.Path(args.workdir) / "export" / "parity.csv"
    if parity.is_file():
        print("\nExported models against the Keras model on the same images (export/parity.csv):")
        print(pd.read_csv(parity, index_col=0).to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"\n{time.perf_counter() - started:.0f} s; written to {args.workdir}/metrics.csv and metrics.md")


if __name__ == "__main__":
    main()
