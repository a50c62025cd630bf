"""Curve figures: CMC curves (with their CSV files) and the training curves of a run's training log
(`hacnn_tf.training_log`; Keras' CSVLogger logs too)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from hacnn_tf.io_utils import atomic_output
from hacnn_tf.training_log import read_training_log
from hacnn_tf.visualization.rendering import new_figure, save_figure

__all__ = [
    "CMC_FIGSIZE",
    "TRAINING_CURVES_FIGSIZE",
    "plot_cmc",
    "plot_training_curves",
    "read_cmc_csv",
    "read_training_log",
    "write_cmc_csv",
]

CMC_FIGSIZE = (6.0, 4.5)
TRAINING_CURVES_FIGSIZE = (15.0, 4.0)


def plot_cmc(
    curves: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    max_rank: int = 20,
    title: str = "CMC",
    dpi: float = 120,
) -> pathlib.Path:
    """Writes a PNG (`CMC_FIGSIZE` inches at `dpi`: 720 x 540 pixels by default) with one CMC curve per name.

    Each curve is 1-D fractions (as `evaluate_rank` returns), drawn at ranks `1..max_rank` in percent.
    """
    if not curves:
        raise ValueError("plot_cmc needs at least one curve")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    figure = new_figure(CMC_FIGSIZE, dpi, layout="tight")
    axes = figure.add_subplot()
    for name, curve in curves.items():
        curve = np.asarray(curve, dtype=np.float64)
        if curve.ndim != 1 or curve.size == 0:
            raise ValueError(f"CMC curve {name!r} must be a non-empty 1-D array, got shape {curve.shape}")
        shown = curve[:max_rank] * 100
        axes.plot(np.arange(1, shown.size + 1), shown, marker="o", markersize=3, label=name)
    axes.set(title=title, xlabel="rank", ylabel="matching rate (%)", xlim=(0.5, max_rank + 0.5))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    return save_figure(figure, path)


def write_cmc_csv(curves: Mapping[str, np.ndarray], path: str | os.PathLike[str]) -> pathlib.Path:
    """Writes CMC curves (fractions) to a CSV with columns `rank` (1-based) and one per curve name, atomically.

    Curves of different lengths are padded with empty cells; `read_cmc_csv` reads the file back.
    """
    if not curves:
        raise ValueError("write_cmc_csv needs at least one curve")
    arrays = {name: np.asarray(curve, dtype=np.float64) for name, curve in curves.items()}
    for name, curve in arrays.items():
        if curve.ndim != 1 or curve.size == 0:
            raise ValueError(f"CMC curve {name!r} must be a non-empty 1-D array, got shape {curve.shape}")
    length = max(curve.size for curve in arrays.values())
    table = pd.DataFrame({"rank": np.arange(1, length + 1)})
    for name, curve in arrays.items():
        table[name] = np.pad(curve, (0, length - curve.size), constant_values=np.nan)
    path = pathlib.Path(path)
    with atomic_output(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def read_cmc_csv(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The curves of a `write_cmc_csv` file (also `evaluate_checkpoint`'s `<output>_cmc.csv`): name -> 1-D fractions."""
    path = pathlib.Path(path)
    table = pd.read_csv(path)
    if "rank" not in table.columns or len(table.columns) < 2:
        raise ValueError(
            f"{path}: a CMC file needs a 'rank' column and at least one curve column; got columns {list(table.columns)}"
        )
    table = table.sort_values("rank")
    return {str(name): table[name].dropna().to_numpy(np.float64) for name in table.columns if name != "rank"}


def plot_training_curves(
    log_csv: str | os.PathLike[str], path: str | os.PathLike[str], dpi: float = 100
) -> pathlib.Path:
    """Writes a PNG (`TRAINING_CURVES_FIGSIZE` inches at `dpi`: 1500 x 400 pixels by default) of a training log.

    Three panels against the epoch (1-based, integer ticks): every `*loss` column holding a value (Keras' CSVLogger
    adds empty `val_*` columns); `val_rank1` and `val_mAP` in percent (epochs without evaluation, NaN or `NA` in the
    log, are
    skipped); `learning_rate` on a log scale. A panel whose columns are absent says so. See `read_training_log`
    for the requirements on the file.
    """
    log = read_training_log(log_csv)
    epochs = log["epoch"].to_numpy()
    figure = new_figure(TRAINING_CURVES_FIGSIZE, dpi)
    loss_axes, accuracy_axes, rate_axes = figure.subplots(1, 3)

    for column in [c for c in log.columns if str(c).endswith("loss") and log[c].notna().any()]:
        loss_axes.plot(epochs, log[column].to_numpy(np.float64), marker=".", label=column)
    loss_axes.set(title="losses", xlabel="epoch", ylabel="loss")
    loss_axes.legend(fontsize=8)

    plotted = False
    for column, label in (("val_rank1", "Rank-1"), ("val_mAP", "mAP")):
        if column in log.columns:
            values = log[column].to_numpy(np.float64)
            measured = ~np.isnan(values)
            if measured.any():
                accuracy_axes.plot(epochs[measured], 100 * values[measured], marker="o", label=label)
                plotted = True
    accuracy_axes.set(title="re-identification (validation)", xlabel="epoch", ylabel="%")
    if plotted:
        accuracy_axes.legend(fontsize=8)
    else:
        _no_data(accuracy_axes, "no val_rank1 / val_mAP logged")

    if "learning_rate" in log.columns and log["learning_rate"].notna().any():
        rates = log["learning_rate"].to_numpy(np.float64)
        rate_axes.plot(epochs, rates, marker=".", drawstyle="steps-post")  # the rate each epoch started with
        if (rates[~np.isnan(rates)] > 0).all():
            rate_axes.set_yscale("log")
    else:
        _no_data(rate_axes, "no learning_rate logged")
    rate_axes.set(title="learning rate", xlabel="epoch")

    for axes in (loss_axes, accuracy_axes, rate_axes):
        axes.grid(True, alpha=0.3)
        axes.set_xlim(0.5, epochs[-1] + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    return save_figure(figure, path)


def _no_data(axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="0.4")
