"""Camera frames with their person boxes, each labelled with the identity it was matched to: green where right,
red where wrong."""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib.patches import Rectangle

from hacnn_tf.visualization.ranking import MATCH_COLOR, MISMATCH_COLOR
from hacnn_tf.visualization.rendering import new_figure, save_figure

__all__ = ["plot_frame_matches"]

_DPI = 100
_TITLE_HEIGHT = 0.3  # inches above each frame


def plot_frame_matches(
    frames: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    labels: Sequence[Sequence[str]],
    correct: Sequence[np.ndarray],
    path: str | os.PathLike[str],
    titles: Sequence[str] = (),
    columns: int = 2,
    suptitle: str | None = None,
) -> pathlib.Path:
    """Draws `frames` (`(H, W, 3)` uint8 RGB, all of one size) in a grid of `columns`, each with its `(B_i, 4)`
    pixel boxes (x1, y1, x2, y2; x2, y2 exclusive) framed and captioned with `labels[i]`, green where `correct[i]`
    (`(B_i,)` bool) holds, red elsewhere; `titles[i]` above frame i. Frames are drawn at one pixel per pixel
    (100 dpi). Writes the PNG to `path` atomically and returns it."""
    if not frames:
        raise ValueError("plot_frame_matches needs at least one frame")
    if not len(frames) == len(boxes) == len(labels) == len(correct):
        raise ValueError(
            f"got {len(frames)} frames, {len(boxes)} box arrays, {len(labels)} label lists and "
            f"{len(correct)} correct arrays; give one of each per frame"
        )
    height, width = frames[0].shape[:2]
    columns = min(columns, len(frames))
    rows = math.ceil(len(frames) / columns)
    top = 0.4 if suptitle else 0.0
    cell_w, cell_h = width / _DPI, height / _DPI + _TITLE_HEIGHT
    figure = new_figure((columns * cell_w, rows * cell_h + top), _DPI, layout=None)
    total_w, total_h = columns * cell_w, rows * cell_h + top
    if suptitle:
        figure.suptitle(suptitle, y=1 - 0.08 / total_h, va="top", fontsize=11)
    for index, (frame, frame_boxes, frame_labels, frame_correct) in enumerate(zip(frames, boxes, labels, correct)):
        row, column = divmod(index, columns)
        left = column * cell_w / total_w
        bottom = 1 - (top + (row + 1) * cell_h) / total_h
        axes = figure.add_axes((left, bottom, cell_w / total_w, (cell_h - _TITLE_HEIGHT) / total_h))
        axes.imshow(frame, interpolation="nearest")
        axes.set_axis_off()
        if index < len(titles):
            axes.set_title(titles[index], fontsize=9, pad=3)
        for (x1, y1, x2, y2), label, ok in zip(np.asarray(frame_boxes, float), frame_labels, frame_correct):
            colour = MATCH_COLOR if ok else MISMATCH_COLOR
            axes.add_patch(
                Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1.5)
            )
            axes.text(
                x1 - 0.5,
                y1 - 1.5,
                label,
                color="white",
                fontsize=7,
                va="bottom",
                bbox={"facecolor": colour, "edgecolor": "none", "pad": 1.0},
            )
    return save_figure(figure, path)
