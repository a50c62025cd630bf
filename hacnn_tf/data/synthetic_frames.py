"""Camera frames of the synthetic data set's world, with ground-truth boxes: re-identification as a tracker meets it.

The cameras and the people are those of the crop set that `hacnn_tf.data.synthetic.generate` writes with the same
`SyntheticConfig` (the same draws): each camera films its background scene, enlarged to the frame, with its colour
cast, brightness, blur and sensor noise, and the people are identities of the set's test split, so that a model
trained on its train split meets them as unseen identities, as in the crop set's evaluation. Each filmed identity
walks through two or more cameras, in a straight line over a sequence of frames, its height growing with its
foot's depth in the frame (a ground plane seen from above); people nearer the camera are painted over those
behind them. Ground truth, one row a person and frame in `annotations.csv`: the tight box of the person's whole
silhouette (`x1, y1, x2, y2` pixels, `x2`/`y2` exclusive, inside the frame), its Market pid and `visibility`,
the fraction of its silhouette not covered by people in front.

Run `python -m hacnn_tf.data.synthetic_frames --root DIR` to write the frames of the default crop set.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import math
import os
import pathlib
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from hacnn_tf.data.synthetic import Renderer, SyntheticConfig, draw_world, figure_extent, finish, write_once

__all__ = [
    "ANNOTATION_COLUMNS",
    "FramesConfig",
    "Placement",
    "generate_frames",
    "main",
    "plan_frames",
    "read_frame_annotations",
    "render_frame",
]

_FORMAT_VERSION = 1
_MARKER = ".synthetic_frames.json"
ANNOTATIONS = "annotations.csv"
ANNOTATION_COLUMNS = ("file", "camera", "frame", "track", "pid", "x1", "y1", "x2", "y2", "visibility")
# Figure height per pixel of foot depth (the soles' row): a person at the bottom of the frame is 0.74 frames tall.
_HEIGHT_PER_FOOT_ROW = 0.74
# Half the widest silhouette (`figure_extent` with the bag and the largest build) in figure heights, rounded up.
_HALF_WIDTH = 0.23


@dataclasses.dataclass(frozen=True)
class FramesConfig:
    """Parameters of the frames; with `crops` (whose seed seeds them too) they determine every byte written.

    Attributes:
        crops: the crop set whose cameras and test identities are filmed.
        num_people: test identities filmed (each walks through `cameras_per_person` cameras).
        cameras_per_person: inclusive (min, max) cameras per person.
        num_frames: frames per camera sequence.
        height, width: frame size in pixels.
    """

    crops: SyntheticConfig = SyntheticConfig()
    num_people: int = 8
    cameras_per_person: tuple[int, int] = (2, 3)
    num_frames: int = 5
    height: int = 384
    width: int = 640
    jpeg_quality: int = 90


@dataclasses.dataclass(frozen=True)
class Placement:
    """One person in one frame: `Renderer.figure`'s figure height `fh`, centre `cx` and `top` (pixels); `person`
    indexes the world's identities, `pid` is its Market pid and `track` numbers the (camera, person) sequences."""

    camera: int
    frame: int
    track: int
    person: int
    pid: int
    fh: float
    cx: float
    top: float


def _check(config: FramesConfig) -> None:
    lo, hi = config.cameras_per_person
    if not 1 <= config.num_people <= config.crops.num_test_ids:
        raise ValueError(
            f"num_people must be within 1..{config.crops.num_test_ids} (the crop set's test "
            f"identities); got {config.num_people}"
        )
    if not 2 <= lo <= hi <= config.crops.num_cameras:
        raise ValueError(
            f"cameras_per_person must be within 2..{config.crops.num_cameras} (the crop set's "
            f"cameras) with min <= max; got {config.cameras_per_person}"
        )
    if config.num_frames < 2:
        raise ValueError(f"num_frames must be >= 2 (a sequence to follow people through); got {config.num_frames}")
    if config.height < 96 or config.width < 96:
        raise ValueError(f"frames must be at least 96 x 96 pixels; got {config.height} x {config.width}")


def _seeds(config: FramesConfig) -> np.random.SeedSequence:
    """The frames' seed: a third child of the crop set's seed, whose first two draw its world and its images."""
    return np.random.SeedSequence(config.crops.seed).spawn(3)[2]


def plan_frames(config: FramesConfig) -> list[Placement]:
    """Who is where in every frame, sorted by camera, frame and depth (back to front, the order of painting)."""
    _check(config)
    _, _, jobs = draw_world(config.crops)
    test_pids = {person: pid for folder, person, pid, _ in jobs if folder == "query"}
    rng = np.random.default_rng(_seeds(config).spawn(1)[0])
    people = sorted(rng.choice(sorted(test_pids), config.num_people, replace=False).tolist())
    lo, hi = config.cameras_per_person
    height, width = config.height, config.width
    ends: list[tuple[int, int, np.ndarray, np.ndarray]] = []  # (camera, person, start, end) of (cx, foot row)
    for person in people:
        for camera in sorted(rng.choice(config.crops.num_cameras, int(rng.integers(lo, hi + 1)), replace=False)):
            foot0 = rng.uniform(0.5, 0.98) * height
            foot1 = np.clip(foot0 + rng.uniform(-0.15, 0.15) * height, 0.5 * height, 0.98 * height)
            cx0 = rng.uniform(*_centre_range(foot0, width))
            cx1 = np.clip(cx0 + rng.uniform(-0.35, 0.35) * width, *_centre_range(foot1, width))
            ends.append((int(camera), person, np.array([cx0, foot0]), np.array([cx1, foot1])))
    ends.sort(key=lambda end: end[:2])
    placements = []
    for track, (camera, person, start, end) in enumerate(ends):
        for frame in range(config.num_frames):
            cx, foot = start + (end - start) * (frame / (config.num_frames - 1))
            fh = _HEIGHT_PER_FOOT_ROW * foot
            placements.append(
                Placement(
                    camera, frame, track, person, test_pids[person], float(fh), float(cx), float(foot - 0.99 * fh)
                )
            )
    return sorted(placements, key=lambda p: (p.camera, p.frame, p.top + 0.99 * p.fh, p.track))


def _centre_range(foot: float, width: int) -> tuple[float, float]:
    """Centres that keep the whole figure standing at `foot` inside the frame (the constraint is linear in the
    foot row, so a straight walk between two such points stays inside)."""
    margin = _HALF_WIDTH * _HEIGHT_PER_FOOT_ROW * foot + 2
    return margin, width - margin


def _backdrop(camera: dict, height: int, width: int) -> dict:
    """The camera at frame size: its scene enlarged (bilinear) to the frame and its noise field tiled to twice
    the frame, so that `finish` draws its windows from it."""
    scene = camera["scene"]
    enlarged = np.stack(
        [
            np.asarray(Image.fromarray(np.ascontiguousarray(scene[..., k])).resize((width, height), Image.BILINEAR))
            for k in range(3)
        ],
        axis=-1,
    )
    noise = camera["noise"]
    reps = (math.ceil(2 * height / noise.shape[0]), math.ceil(2 * width / noise.shape[1]), 1)
    return {**camera, "scene": enlarged.astype(np.float32), "noise": np.tile(noise, reps)[: 2 * height, : 2 * width]}


def render_frame(
    backdrop: dict, people: Sequence[dict], placements: Sequence[Placement], rng: np.random.Generator
) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """Paints `placements` (back to front; `people[i]` is the identity of `placements[i]`) over the camera
    `backdrop` and finishes the frame as the camera does. Returns the 8-bit frame, the `(P, 4)` int64 boxes of the
    silhouettes (x1, y1, x2, y2; x2, y2 exclusive) and the `(P,)` fraction of each silhouette left visible."""
    scene = backdrop["scene"]
    height, width = scene.shape[:2]
    image = scene.copy()
    owner = np.full((height, width), -1, np.int64)  # who is painted last at each pixel
    boxes = np.zeros((len(placements), 4), np.int64)
    areas = np.zeros(len(placements), np.int64)
    for index, (person, placement) in enumerate(zip(people, placements)):
        fh, cx, top = placement.fh, placement.cx, placement.top
        left, crown, right, sole = figure_extent(person)
        x0, x1 = max(math.floor(cx + left * fh) - 1, 0), min(math.ceil(cx + right * fh) + 2, width)
        y0, y1 = max(math.floor(top + crown * fh) - 1, 0), min(math.ceil(top + sole * fh) + 2, height)
        mask = Renderer(y1 - y0, x1 - x0).figure(image[y0:y1, x0:x1], rng, person, fh, cx - x0, top - y0)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        boxes[index] = (x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1)
        areas[index] = mask.sum()
        owner[y0:y1, x0:x1][mask] = index
    visible = np.bincount(owner[owner >= 0], minlength=len(placements))
    return finish(image, rng, backdrop, flip=False), boxes, visible / np.maximum(areas, 1)


def generate_frames(root: str | os.PathLike, config: FramesConfig = FramesConfig()) -> pathlib.Path:
    """Writes the frames (`c<camera>/<frame>.jpg`, cameras from 1, frames from 0) and `annotations.csv`
    (`ANNOTATION_COLUMNS`, one row a person and frame) under `root`; returns `root`.

    Deterministic (the same config gives byte-identical files), idempotent and atomic as
    `hacnn_tf.data.synthetic.generate`: returns at once when `root` holds frames of the same config, replaces
    frames of another config, and raises FileExistsError on any other non-empty `root`."""
    _check(config)
    params = {"format_version": _FORMAT_VERSION, **dataclasses.asdict(config)}
    params["crops"]["images_per_id_per_camera"] = list(config.crops.images_per_id_per_camera)
    params["cameras_per_person"] = list(config.cameras_per_person)
    return write_once(root, params, _MARKER, lambda out: _write(config, out))


def _write(config: FramesConfig, out: pathlib.Path) -> None:
    cameras, people, _ = draw_world(config.crops)
    placements = plan_frames(config)
    frame_seeds = iter(_seeds(config).spawn(1 + config.crops.num_cameras * config.num_frames)[1:])
    rows = []
    for camera_index, camera in enumerate(cameras):
        backdrop = _backdrop(camera, config.height, config.width)
        (out / f"c{camera_index + 1}").mkdir()
        for frame in range(config.num_frames):
            here = [p for p in placements if (p.camera, p.frame) == (camera_index, frame)]
            image, boxes, visibility = render_frame(
                backdrop, [people[p.person] for p in here], here, np.random.default_rng(next(frame_seeds))
            )
            name = f"c{camera_index + 1}/{frame:03d}.jpg"
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=config.jpeg_quality, subsampling=0)
            (out / name).write_bytes(buffer.getvalue())
            rows += [
                (name, camera_index + 1, frame, p.track, p.pid, *box, round(float(v), 4))
                for p, box, v in zip(here, boxes.tolist(), visibility)
            ]
    pd.DataFrame(rows, columns=list(ANNOTATION_COLUMNS)).to_csv(out / ANNOTATIONS, index=False)


def read_frame_annotations(root: str | os.PathLike) -> pd.DataFrame:
    """`root/annotations.csv` with a `path` column (absolute frame paths) added. Raises FileNotFoundError when it
    or a frame it names is missing and ValueError naming the file, the column and the row when the file is not a
    CSV table, a column is missing, a cell is not a number (or empty) or a box is empty."""
    root = pathlib.Path(root)
    path = root / ANNOTATIONS
    if not path.is_file():
        raise FileNotFoundError(f"no {ANNOTATIONS} in {root}: write the frames with generate_frames")
    try:
        table = pd.read_csv(path, dtype={"file": str})
    except (ValueError, UnicodeDecodeError) as error:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise ValueError(f"{path} is not a CSV table of frame annotations: {error}") from None
    missing = [c for c in ANNOTATION_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing} (it has {list(table.columns)})")
    empty_file = np.flatnonzero(table["file"].isna())
    if len(empty_file):
        raise ValueError(f"{path}: row {empty_file[0] + 2}, column file: empty")
    for column in ANNOTATION_COLUMNS[1:]:
        numbers = pd.to_numeric(table[column], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(numbers.to_numpy(np.float64)))
        if len(bad):
            raise ValueError(
                f"{path}: row {bad[0] + 2}, column {column}: {table[column].iloc[bad[0]]!r} is not a number"
            )
        table[column] = numbers
    empty = np.flatnonzero((table["x2"] <= table["x1"]) | (table["y2"] <= table["y1"]))
    if len(empty):
        raise ValueError(
            f"{path}: row {empty[0] + 2} has an empty box (x1, y1, x2, y2 = "
            f"{table.loc[empty[0], ['x1', 'y1', 'x2', 'y2']].tolist()})"
        )
    table["path"] = [str(root / name) for name in table["file"]]
    absent = [name for name in table["file"].unique() if not (root / name).is_file()]
    if absent:
        raise FileNotFoundError(f"{path} names frames that are not in {root}: {absent[:3]}")
    return table


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: writes the frames of the default crop set (of `--seed`) and prints what was written."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="folder to write the frames into")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crop set whose world is filmed")
    parser.add_argument("--num-people", type=int, default=8)
    parser.add_argument("--num-frames", type=int, default=5)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    config = FramesConfig(SyntheticConfig(seed=args.seed), num_people=args.num_people, num_frames=args.num_frames)
    root = generate_frames(args.root, config)
    table = read_frame_annotations(root)
    print(
        f"synthetic frames at {root} ({time.perf_counter() - start:.1f} s): {table['file'].nunique()} frames, "
        f"{len(table)} boxes, {table['pid'].nunique()} identities, {table['track'].nunique()} tracks, "
        f"median visibility {table['visibility'].median():.2f}"
    )


if __name__ == "__main__":
    main()
