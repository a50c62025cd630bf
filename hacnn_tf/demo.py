"""The main job on the built-in synthetic data set: generate, evaluate untrained, train, evaluate, report."""

from __future__ import annotations

import os
import pathlib
from typing import Sequence

import keras
import pandas as pd

from hacnn_tf.data import synthetic
from hacnn_tf.data.datasets import load_dataset
from hacnn_tf.evaluation.features import evaluate_model
from hacnn_tf.evaluation.metrics import results_table, write_results
from hacnn_tf.trainer import build_model, fit, load_config

METRIC_COLUMNS = ("rank1", "rank5", "rank10", "mAP")
DEMO_CONFIG = pathlib.Path(__file__).resolve().parent.parent / "training" / "configs" / "demo_synthetic.yaml"


def run_demo(workdir: str | os.PathLike, config_path: str | os.PathLike = DEMO_CONFIG,
             overrides: Sequence[str] = (), verbose: int | str = 2) -> pd.DataFrame:
    """Writes the synthetic data set under `workdir/data`, trains under `workdir/train` and returns (and writes to
    `workdir/metrics.{csv,md}`) the table of Rank-1/5/10 and mAP (fractions) of the stages `untrained`, `trained`."""
    workdir = pathlib.Path(workdir)
    root = synthetic.generate(workdir / "data", seed=0)
    dataset = load_dataset("market1501", root)
    dataset.print_summary()
    config = load_config(config_path, [f"output.dir={workdir / 'train'}", *overrides])

    keras.utils.set_random_seed(int(config["train"]["seed"]))
    untrained = build_model(config, dataset.num_train_pids)
    results = {"untrained": evaluate_model(untrained, dataset.query, dataset.gallery)}
    _, history = fit(config, dataset, verbose=verbose)
    # The evaluation callback measured the trained model after the last epoch (eval.every: 0 -> only then).
    results["trained"] = {name.removeprefix("val_"): values[-1] for name, values in history.history.items()
                          if name.startswith("val_")}

    table = results_table(results, percent=False)[list(METRIC_COLUMNS)]
    table.index.name = "stage"
    write_results(table, workdir / "metrics", float_format="{:.3f}")
    return table
