"""Figures on matplotlib's Agg canvas (no pyplot, no global backend switch), saved as PNG atomically."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hacnn_tf.io_utils import atomic_output

__all__ = ["figure_pixels", "new_figure", "save_figure"]


def new_figure(figsize: Sequence[float], dpi: float, layout: str | None = "constrained") -> Figure:
    """A `Figure` of `figsize` inches at `dpi`, attached to an Agg canvas: its PNG is `round(figsize * dpi)` pixels
    (matplotlib truncates fractions of a pixel, except within 1e-8 of an integer)."""
    figure = Figure(figsize=tuple(float(s) for s in figsize), dpi=dpi, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> pathlib.Path:
    """Writes `figure` to `path` as PNG at the figure's own size and dpi (no tight bounding box), atomically."""
    path = pathlib.Path(path)
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png", dpi=figure.dpi)
    return path


def figure_pixels(figure: Figure) -> np.ndarray:
    """The rendered figure as `(height, width, 3)` uint8 RGB, as the PNG would hold it."""
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
