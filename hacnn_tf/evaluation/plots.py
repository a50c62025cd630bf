"""CMC curve plots, rendered with matplotlib's Agg canvas (no pyplot, no global backend switch)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hacnn_tf.io_utils import atomic_output

__all__ = ["plot_cmc"]


def plot_cmc(
    curves: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    max_rank: int = 20,
    title: str = "CMC",
) -> pathlib.Path:
    """Writes a PNG with one CMC curve (fractions, as `evaluate_rank` returns) per name, ranks 1..max_rank, in %."""
    if not curves:
        raise ValueError("plot_cmc needs at least one curve")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    figure = Figure(figsize=(6, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, curve in curves.items():
        curve = np.asarray(curve, dtype=np.float64)
        if curve.ndim != 1 or curve.size == 0:
            raise ValueError(f"CMC curve {name!r} must be a non-empty 1-D array, got shape {curve.shape}")
        shown = curve[:max_rank] * 100
        axes.plot(np.arange(1, shown.size + 1), shown, marker="o", markersize=3, label=name)
    axes.set(title=title, xlabel="rank", ylabel="matching rate (%)", xlim=(0.5, max_rank + 0.5))
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()

    path = pathlib.Path(path)
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png")
    return path
