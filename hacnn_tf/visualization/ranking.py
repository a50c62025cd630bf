"""Ranked-list figures: each query image beside its top-k gallery matches, true matches framed green, others red."""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from hacnn_tf.visualization.rendering import new_figure, save_figure

__all__ = [
    "CAPTION_HEIGHT",
    "MATCH_COLOR",
    "MISMATCH_COLOR",
    "QUERY_COLOR",
    "RankedList",
    "choose_queries",
    "load_thumbnail",
    "plot_ranked_lists",
    "rank_gallery",
]

MATCH_COLOR = (0.0, 0.6, 0.0)
MISMATCH_COLOR = (0.85, 0.0, 0.0)
QUERY_COLOR = (0.2, 0.2, 0.2)
# Inches below each row of `plot_ranked_lists` for the two caption lines (and above the first for the rank).
CAPTION_HEIGHT = 0.5


@dataclasses.dataclass(frozen=True)
class RankedList:
    """The top of one query's ranking, `k` entries (fewer when the gallery left fewer after exclusion).

    Attributes:
        query_index: row of the query in the query table (positional).
        query_pid, query_camid: the query's identity and camera.
        gallery_indices: `(k,)` positional rows of the gallery table, nearest first.
        distances: `(k,)` their distances to the query.
        pids, camids: `(k,)` their identities and cameras.
        matches: `(k,)` bool, True where the gallery image shows the query's identity.
    """

    query_index: int
    query_pid: int
    query_camid: int
    gallery_indices: np.ndarray
    distances: np.ndarray
    pids: np.ndarray
    camids: np.ndarray
    matches: np.ndarray


def choose_queries(num_query: int, num_queries: int, seed: int = 0) -> np.ndarray:
    """`min(num_queries, num_query)` distinct query rows drawn with `numpy.random.default_rng(seed)`, ascending."""
    if num_queries < 1:
        raise ValueError(f"num_queries must be >= 1, got {num_queries}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_query, size=min(num_queries, num_query), replace=False))


def rank_gallery(
    query: pd.DataFrame,
    gallery: pd.DataFrame,
    distmat: np.ndarray,
    query_indices: Sequence[int],
    top_k: int = 10,
) -> list[RankedList]:
    """The `top_k` nearest gallery images of each query in `query_indices`, under the Market-1501 protocol of
    `hacnn_tf.evaluation.metrics`: gallery images of the query's identity AND camera are left out, the others are
    ordered by `np.argsort` of the distance row (the evaluation's order, ties included).

    Args:
        query, gallery: tables with columns `pid` and `camid`, one row per distmat row / column.
        distmat: `(num_query, num_gallery)` distances.
        query_indices: positional query rows.
        top_k: entries per list.
    """
    distmat = np.asarray(distmat)
    if distmat.shape != (len(query), len(gallery)):
        raise ValueError(
            f"distmat must be (num_query, num_gallery) = {(len(query), len(gallery))}; got {distmat.shape}"
        )
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    q_pids, q_camids = query["pid"].to_numpy(), query["camid"].to_numpy()
    g_pids, g_camids = gallery["pid"].to_numpy(), gallery["camid"].to_numpy()
    lists = []
    for index in query_indices:
        index = int(index)
        if not 0 <= index < len(query):
            raise ValueError(f"query index {index} is outside 0..{len(query) - 1}")
        order = np.argsort(distmat[index])
        kept = order[~((g_pids[order] == q_pids[index]) & (g_camids[order] == q_camids[index]))][:top_k]
        lists.append(
            RankedList(
                query_index=index,
                query_pid=int(q_pids[index]),
                query_camid=int(q_camids[index]),
                gallery_indices=kept,
                distances=distmat[index, kept],
                pids=g_pids[kept],
                camids=g_camids[kept],
                matches=g_pids[kept] == q_pids[index],
            )
        )
    return lists


def load_thumbnail(path: str | os.PathLike[str], size: Sequence[int]) -> np.ndarray:
    """The image at `path` as `(height, width, 3)` uint8 RGB resized (bilinear) to `size = (height, width)`."""
    with Image.open(path) as image:
        resized = image.convert("RGB").resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR)
        return np.asarray(resized)


def plot_ranked_lists(
    query: pd.DataFrame,
    gallery: pd.DataFrame,
    distmat: np.ndarray,
    path: str | os.PathLike[str],
    query_indices: Sequence[int] | None = None,
    num_queries: int = 5,
    top_k: int = 10,
    seed: int = 0,
    image_size: Sequence[int] = (128, 64),
    panel_width: float = 0.9,
    dpi: float = 100,
) -> pathlib.Path:
    """Writes a PNG with one row per query: the query image (grey frame, caption its pid and camera), then its
    `top_k` gallery images by `rank_gallery` (green frame: same identity, red: different; caption camera and
    distance). Images are read from the tables' `path` column and shown at `image_size = (height, width)`.

    Queries are `query_indices` (positional rows), or else `num_queries` drawn by `choose_queries(seed)`.
    Camera ids are shown as the tables hold them (0-based). The figure is `(1 + top_k) * panel_width` inches wide
    and `rows * (panel_width * height / width + CAPTION_HEIGHT)` tall, at `dpi`.
    """
    if query_indices is None:
        query_indices = choose_queries(len(query), num_queries, seed)
    lists = rank_gallery(query, gallery, distmat, query_indices, top_k)
    if not lists:
        raise ValueError("plot_ranked_lists needs at least one query")
    height, width = (int(n) for n in image_size)
    rows, cols = len(lists), 1 + top_k
    figure = new_figure((cols * panel_width, rows * (panel_width * height / width + CAPTION_HEIGHT)), dpi)
    grid = figure.subplots(rows, cols, squeeze=False)
    query_paths, gallery_paths = query["path"].to_numpy(), gallery["path"].to_numpy()
    for row, ranked in enumerate(lists):
        _image_panel(
            grid[row, 0],
            load_thumbnail(query_paths[ranked.query_index], image_size),
            QUERY_COLOR,
            f"query\npid {ranked.query_pid} cam {ranked.query_camid}",
        )
        for rank in range(top_k):
            axes = grid[row, rank + 1]
            if rank >= len(ranked.gallery_indices):
                axes.set_axis_off()
                continue
            _image_panel(
                axes,
                load_thumbnail(gallery_paths[ranked.gallery_indices[rank]], image_size),
                MATCH_COLOR if ranked.matches[rank] else MISMATCH_COLOR,
                f"cam {ranked.camids[rank]}\n{ranked.distances[rank]:.3g}",
            )
    for rank in range(top_k):
        grid[0, rank + 1].set_title(f"{rank + 1}", fontsize=7)
    return save_figure(figure, path)


def _image_panel(axes, image: np.ndarray, frame_color, caption: str) -> None:
    axes.imshow(image, interpolation="bilinear")
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_edgecolor(frame_color)
        spine.set_linewidth(3)
    axes.set_xlabel(caption, fontsize=6, labelpad=2)
