"""The main job on the built-in synthetic data set: generate, evaluate untrained, train, evaluate, report."""

from __future__ import annotations

import os
import pathlib
import time
from typing import Sequence

import keras
import pandas as pd

from hacnn_tf.data.datasets import load_dataset
from hacnn_tf.data.synthetic import make_synthetic_dataset
from hacnn_tf.evaluation.features import evaluate_model
from hacnn_tf.evaluation.metrics import results_table, write_results
from hacnn_tf.trainer import build_model, fit, load_config

DEMO_CONFIG = pathlib.Path(__file__).resolve().parent.parent / "training" / "configs" / "demo_synthetic.yaml"


def run_demo(workdir: str | os.PathLike, config_path: str | os.PathLike = DEMO_CONFIG,
             overrides: Sequence[str] = (), verbose: int | str = 2) -> pd.DataFrame:
    """Writes the synthetic data set under `workdir/data`, trains under `workdir/train` and returns (and writes to
    `workdir/results.{csv,md}`) the table of Rank-1/5/10/20 and mAP before and after training, in percent."""
    workdir = pathlib.Path(workdir)
    started = time.perf_counter()
    root = make_synthetic_dataset(workdir / "data", seed=0)
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

    table = results_table(results)
    table["seconds"] = [float("nan"), time.perf_counter() - started]
    write_results(table, workdir / "results")
    return table
