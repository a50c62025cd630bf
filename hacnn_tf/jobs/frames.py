"""The frames job: HA-CNN as a tracker's appearance cue on camera frames with ground-truth boxes
(`hacnn_tf.data.synthetic_frames`): cross-camera matching and frame-to-frame association by cosine distance."""

from __future__ import annotations

import json
import os
import pathlib

import keras
import numpy as np
import pandas as pd
from PIL import Image

from hacnn_tf.data.synthetic_frames import read_frame_annotations
from hacnn_tf.evaluation.distance import compute_distance_matrix
from hacnn_tf.io_utils import atomic_output
from hacnn_tf.runtime import Embedder
from hacnn_tf.tracking import ReIDEmbedder
from hacnn_tf.visualization.frames import plot_frame_matches

__all__ = ["association_accuracy", "cross_camera_matches", "greedy_assignment", "run_frames_demo"]


def cross_camera_matches(
    embeddings: np.ndarray, pids: np.ndarray, cameras: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each of the `(N, D)` box `embeddings`, the row of its nearest box (cosine distance) among the boxes of
    the other cameras, -1 where no other camera has a box. Returns `(nearest (N,) int64, queries (N,) bool)`:
    `queries` marks the boxes whose identity (`pids`) some other camera shows, the boxes Rank-1 counts (as the
    Market-1501 protocol drops queries without a cross-camera match). Ties go to the lower row."""
    pids, cameras = np.asarray(pids), np.asarray(cameras)
    distance = compute_distance_matrix(embeddings, embeddings, "cosine").astype(np.float64)
    same_camera = cameras[:, None] == cameras[None, :]
    distance[same_camera] = np.inf
    nearest = np.where(same_camera.all(axis=1), -1, np.argmin(distance, axis=1))
    queries = ((pids[:, None] == pids[None, :]) & ~same_camera).any(axis=1)
    return nearest.astype(np.int64), queries


def greedy_assignment(distance: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs of an `(M, N)` distance matrix, closest pair first, until the rows or the
    columns run out (ties: the first in row-major order)."""
    distance = np.array(distance, np.float64)
    pairs = []
    for _ in range(min(distance.shape)):
        row, column = np.unravel_index(np.argmin(distance), distance.shape)
        pairs.append((int(row), int(column)))
        distance[row, :], distance[:, column] = np.inf, np.inf
    return pairs


def association_accuracy(
    embeddings: np.ndarray, tracks: np.ndarray, cameras: np.ndarray, frames: np.ndarray
) -> tuple[float, int]:
    """Tracker-style association between consecutive frames of each camera: the boxes of frame f and of the next
    frame of that camera are paired by `greedy_assignment` on cosine distance, and a pair is right when both boxes
    are of one track (`tracks`: ground-truth track ids). Returns `(right pairs / tracks seen in both frames, that
    count)` summed over every camera and pair of consecutive frames (NaN when no track spans two frames)."""
    tracks, cameras, frames = np.asarray(tracks), np.asarray(cameras), np.asarray(frames)
    right = total = 0
    for camera in np.unique(cameras):
        camera_frames = np.unique(frames[cameras == camera])
        for before, after in zip(camera_frames[:-1], camera_frames[1:]):
            a = np.flatnonzero((cameras == camera) & (frames == before))
            b = np.flatnonzero((cameras == camera) & (frames == after))
            pairs = greedy_assignment(compute_distance_matrix(embeddings[a], embeddings[b], "cosine"))
            right += sum(tracks[a[i]] == tracks[b[j]] for i, j in pairs)
            total += len(np.intersect1d(tracks[a], tracks[b]))
    return (right / total if total else float("nan")), total


def _read_frame(path: str) -> np.ndarray:
    """The frame at `path` as `(H, W, 3)` uint8 RGB, or a ValueError naming the file (PIL's truncated-file error
    does not)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as error:  # UnidentifiedImageError is an OSError
        raise ValueError(f"{path}: not a readable image ({error})") from None


def run_frames_demo(
    model_or_path: str | os.PathLike | Embedder | keras.Model,
    frames_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    min_visibility: float = 0.3,
) -> dict:
    """Embeds the ground-truth boxes of the frames under `frames_root` (`generate_frames`) that are at least
    `min_visibility` visible with `ReIDEmbedder(model_or_path)` and measures, by cosine distance:

    - `cross_camera_rank1`: the fraction of boxes (whose identity another camera shows) whose nearest box in the
      other cameras shows their identity (`cross_camera_matches`), over `queries` boxes;
    - `association_accuracy`: the fraction of tracks followed right from each frame to the next by a greedy
      assignment (`association_accuracy`), over `associations` track links.

    Writes into `out_dir` (each file atomically): `frames_metrics.json` (the returned dict), `frame_matches.csv`
    (each box: file, camera, frame, track, pid, box, visibility, `matched_pid` and `matched_file` of its nearest
    box in another camera, `correct`) and `frame_matches.png` (the middle frame of each camera, each box labelled
    with the identity matched to it, green when right, red when wrong). Returns the metrics dict (counts, the two
    accuracies, `min_visibility`)."""
    out_dir = pathlib.Path(out_dir)
    table = read_frame_annotations(frames_root)
    table = table[table["visibility"] >= min_visibility].reset_index(drop=True)
    if table.empty:
        raise ValueError(f"no box of {frames_root} is at least {min_visibility} visible")
    files = list(dict.fromkeys(table["file"]))
    images = {
        name: _read_frame(path)
        for name, path in table.drop_duplicates("file")[["file", "path"]].itertuples(index=False)
    }
    box_columns = ["x1", "y1", "x2", "y2"]
    table = pd.concat([table[table["file"] == name] for name in files], ignore_index=True)  # frame-then-box order
    embeddings = ReIDEmbedder(model_or_path)(
        [images[name] for name in files],
        [table.loc[table["file"] == name, box_columns].to_numpy(np.float32) for name in files],
    )

    pids, cameras = table["pid"].to_numpy(), table["camera"].to_numpy()
    nearest, queries = cross_camera_matches(embeddings, pids, cameras)
    table["matched_pid"] = np.where(nearest >= 0, pids[nearest], -1)
    table["matched_file"] = np.where(nearest >= 0, table["file"].to_numpy()[nearest], "")
    table["correct"] = table["matched_pid"] == table["pid"]
    accuracy, links = association_accuracy(embeddings, table["track"].to_numpy(), cameras, table["frame"].to_numpy())
    metrics = {
        "frames": len(files),
        "boxes": len(table),
        "identities": int(table["pid"].nunique()),
        "queries": int(queries.sum()),
        "cross_camera_rank1": float(table["correct"][queries].mean()),
        "associations": links,
        "association_accuracy": float(accuracy),
        "min_visibility": min_visibility,
    }

    _plot_middle_frames(table, images, metrics["cross_camera_rank1"], out_dir / "frame_matches.png")
    with atomic_output(out_dir / "frame_matches.csv") as tmp:
        table.drop(columns="path").to_csv(tmp, index=False)
    with atomic_output(out_dir / "frames_metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=1))
    return metrics


def _plot_middle_frames(table: pd.DataFrame, images: dict, rank1: float, path: pathlib.Path) -> None:
    """`frame_matches.png` of `run_frames_demo`: the middle frame of each camera, each box labelled with the
    identity matched to it (`matched_pid`, and the true one when wrong), green when right, red when wrong."""
    box_columns = ["x1", "y1", "x2", "y2"]
    cameras = table["camera"].to_numpy()
    per_camera = [sorted(table.loc[table["camera"] == camera, "file"].unique()) for camera in sorted(set(cameras))]
    shown = [names[len(names) // 2] for names in per_camera]  # the middle frame of each camera
    rows = [table[table["file"] == name] for name in shown]
    plot_frame_matches(
        [images[name] for name in shown],
        [r[box_columns].to_numpy() for r in rows],
        [[f"{m} (is {p})" if m != p else str(m) for m, p in zip(r["matched_pid"], r["pid"])] for r in rows],
        [r["correct"].to_numpy() for r in rows],
        path,
        titles=[f"camera {r['camera'].iloc[0]}, frame {r['frame'].iloc[0]}" for r in rows],
        suptitle=f"identity of the nearest box in another camera (cross-camera Rank-1 "
        f"{rank1:.3f}; green: right, red: wrong)",
    )
