"""The frames job: cross-camera Rank-1 and frame-to-frame association against hand-worked cases, and the job's
files against its own embeddings of the ground-truth boxes, the figure's box colours."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hacnn_tf.data.synthetic import SyntheticConfig
from hacnn_tf.data.synthetic_frames import FramesConfig, generate_frames, read_frame_annotations
from hacnn_tf.jobs.frames import association_accuracy, cross_camera_matches, greedy_assignment, run_frames_demo
from hacnn_tf.tracking import ReIDEmbedder
from hacnn_tf.visualization.frames import plot_frame_matches
from hacnn_tf.visualization.ranking import MATCH_COLOR, MISMATCH_COLOR


def at_angles(degrees, scales=None) -> np.ndarray:
    """2-D embeddings at `degrees` (cosine distance is 1 - cos of the angle between two), lengths `scales`."""
    radians = np.deg2rad(np.asarray(degrees, np.float64))
    scales = np.ones(len(radians)) if scales is None else np.asarray(scales)
    return (np.stack([np.cos(radians), np.sin(radians)], axis=1) * scales[:, None]).astype(np.float32)


def test_cross_camera_matches_a_worked_case():
    #            box:   0    1    2    3    4    5
    angles = [0, 90, 30, 100, 180, 94]
    cameras = [1, 1, 2, 2, 3, 3]
    pids = [7, 8, 7, 8, 9, 7]
    # Nearest box in another camera: 0 -> 2 (30 deg, pid 7: right), 1 -> 5 (4 deg, pid 7: wrong), 2 -> 0 (right),
    # 3 -> 5 (wrong), 4 -> 3 (pid 9 is in no other camera: not a query), 5 -> 1 (wrong).
    nearest, queries = cross_camera_matches(at_angles(angles, [1, 2, 0.5, 3, 1, 1.5]), pids, cameras)
    assert nearest.tolist() == [2, 5, 0, 5, 3, 1]
    assert queries.tolist() == [True, True, True, True, False, True]
    assert np.mean(np.asarray(pids)[nearest][queries] == np.asarray(pids)[queries]) == pytest.approx(2 / 5)
    # One camera only: nobody has a box elsewhere.
    nearest, queries = cross_camera_matches(at_angles([0, 10]), [1, 1], [4, 4])
    assert nearest.tolist() == [-1, -1] and not queries.any()


def test_greedy_assignment_takes_the_closest_pair_first():
    # Greedy takes (0, 0) at 0.1, leaving (1, 1) at 0.9; the optimal assignment would be (0, 1) + (1, 0) = 0.35.
    assert greedy_assignment(np.array([[0.1, 0.2], [0.15, 0.9]])) == [(0, 0), (1, 1)]
    assert greedy_assignment(np.array([[0.5, 0.4], [0.3, 0.6], [0.1, 0.7]])) == [(2, 0), (0, 1)]
    assert greedy_assignment(np.zeros((0, 3))) == []


def test_association_accuracy_a_worked_case():
    rows = pd.DataFrame(
        [  # camera, frame, track, angle
            (1, 0, 1, 0),
            (1, 0, 2, 90),
            (1, 1, 1, 88),
            (1, 1, 2, 180),  # track 2 of frame 0 is 2 deg from track 1 here: both links swap
            (1, 2, 1, 0),  # track 2 has left; track 1 (88 deg before) is linked right
            (2, 0, 3, 45),
            (2, 1, 3, 50),
            (2, 1, 4, 300),
        ],
        columns=["camera", "frame", "track", "angle"],
    )
    accuracy, links = association_accuracy(at_angles(rows["angle"]), rows["track"], rows["camera"], rows["frame"])
    # right links: 0 of 2 (camera 1, frames 0-1), 1 of 1 (frames 1-2), 1 of 1 (camera 2; track 4 is new)
    assert (accuracy, links) == (pytest.approx(2 / 4), 4)
    assert np.isnan(association_accuracy(at_angles([0]), [1], [1], [0])[0])


def test_run_frames_demo_writes_what_its_embeddings_give(tmp_path, export_model):
    crops = SyntheticConfig(
        num_train_ids=3,
        num_test_ids=5,
        num_cameras=3,
        images_per_id_per_camera=(2, 2),
        num_distractors=1,
        num_junk=1,
        seed=2,
    )
    root = generate_frames(tmp_path / "frames", FramesConfig(crops, num_people=4, num_frames=3, height=160, width=256))
    metrics = run_frames_demo(export_model, root, tmp_path / "out", min_visibility=0.3)

    table = read_frame_annotations(root)
    kept = table[table["visibility"] >= 0.3]
    files = list(dict.fromkeys(kept["file"]))
    embeddings = ReIDEmbedder(export_model)(
        [np.asarray(Image.open(root / name).convert("RGB")) for name in files],
        [kept.loc[kept["file"] == name, ["x1", "y1", "x2", "y2"]].to_numpy() for name in files],
    )
    kept = pd.concat([kept[kept["file"] == name] for name in files])
    nearest, queries = cross_camera_matches(embeddings, kept["pid"], kept["camera"])
    pids = kept["pid"].to_numpy()
    accuracy, links = association_accuracy(embeddings, kept["track"], kept["camera"], kept["frame"])
    assert metrics == {
        "frames": 9,
        "boxes": len(kept),
        "identities": 4,
        "queries": int(queries.sum()),
        "cross_camera_rank1": pytest.approx(np.mean(pids[nearest][queries] == pids[queries]), abs=1e-12),
        "associations": links,
        "association_accuracy": pytest.approx(accuracy, abs=1e-12),
        "min_visibility": 0.3,
    }
    assert links == sum(
        len(set(g[g["frame"] == f]["track"]) & set(g[g["frame"] == f + 1]["track"]))
        for _, g in kept.groupby("camera")
        for f in (0, 1)
    )

    written = pd.read_csv(tmp_path / "out" / "frame_matches.csv")
    assert written["matched_pid"].tolist() == pids[nearest].tolist()
    assert (written["correct"] == (written["matched_pid"] == written["pid"])).all()
    assert (written["matched_file"].str[:3] != written["file"].str[:3]).all()  # matched in another camera
    assert json.loads((tmp_path / "out" / "frames_metrics.json").read_text()) == metrics
    with Image.open(tmp_path / "out" / "frame_matches.png") as figure:  # 2 x 2 grid of 256 x (160 + 30) + 40
        assert figure.size == (2 * 256, 2 * 190 + 40)


def test_plot_frame_matches_frames_boxes_green_when_right_red_when_wrong(tmp_path):
    frame = np.full((120, 200, 3), 128, np.uint8)
    boxes = np.array([[20, 30, 60, 110], [120, 40, 170, 100]])
    path = plot_frame_matches(
        [frame], [boxes], [["7", "8 (is 9)"]], [np.array([True, False])], tmp_path / "f.png", titles=["camera 1"]
    )
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert pixels.shape == (120 + 30, 200, 3)  # one pixel a pixel, 0.3 in of title above
    # The left edges of the boxes (frame rows 70 and 80, under the 30 title rows): green, then red.
    np.testing.assert_allclose(pixels[30 + 70, 20], np.array(MATCH_COLOR) * 255, atol=40)
    np.testing.assert_allclose(pixels[30 + 80, 120], np.array(MISMATCH_COLOR) * 255, atol=40)
    np.testing.assert_array_equal(pixels[30 + 10, 100], [128, 128, 128])  # the frame itself, unscaled
    with pytest.raises(ValueError, match="one of each per frame"):
        plot_frame_matches([frame], [boxes, boxes], [["7"]], [np.array([True])], tmp_path / "g.png")


@pytest.fixture(scope="module")
def small_frames(tmp_path_factory):
    crops = SyntheticConfig(
        num_train_ids=3,
        num_test_ids=4,
        num_cameras=2,
        images_per_id_per_camera=(2, 2),
        num_distractors=1,
        num_junk=1,
        seed=4,
    )
    return generate_frames(
        tmp_path_factory.mktemp("frames") / "frames",
        FramesConfig(crops, num_people=2, num_frames=2, height=96, width=128, cameras_per_person=(2, 2)),
    )


def _corrupted_copy(root, destination, edit):
    shutil.copytree(root, destination)
    edit(destination)
    return destination


def test_bad_annotations_and_frames_are_refused_naming_the_file_and_cell(small_frames, tmp_path, export_model):
    """A cell that is not a number would have failed deep in pandas (or, empty, become a NaN box embedded as zeros
    and a NaN visibility silently dropped); an unreadable CSV or frame raised without naming the file."""
    csv = small_frames / "annotations.csv"
    lines = csv.read_text().splitlines()
    columns = lines[0].split(",")

    def with_cell(column, value):
        def edit(root):
            cells = lines[2].split(",")
            cells[columns.index(column)] = value
            (root / "annotations.csv").write_text("\n".join([*lines[:2], ",".join(cells), *lines[3:]]) + "\n")

        return edit

    for case, (column, value) in enumerate((("x1", "abc"), ("x1", ""), ("visibility", "nan"), ("pid", "7x"))):
        root = _corrupted_copy(small_frames, tmp_path / f"cell{case}", with_cell(column, value))
        with pytest.raises(ValueError, match=rf"annotations\.csv: row 3, column {column}: .*not a number"):
            read_frame_annotations(root)
    not_csv = r"annotations\.csv is not a CSV table of frame annotations"
    for case, (data, message) in enumerate(
        (
            (b"", not_csv),
            (b"\x00\xff\xfe binary", not_csv),
            (f"{lines[0]}\n{lines[1]}\n{lines[2]},extra\n".encode(), not_csv),
            # pandas takes an extra first row's first cell for the index: the columns shift.
            (f"{lines[0]}\n{lines[1]},extra\n{lines[2]}\n".encode(), r"row 2, column visibility: 'extra' is not a"),
        )
    ):
        root = _corrupted_copy(
            small_frames, tmp_path / f"csv{case}", lambda r, data=data: (r / "annotations.csv").write_bytes(data)
        )
        with pytest.raises(ValueError, match=message):
            read_frame_annotations(root)
    first = lines[1].split(",")[0]
    root = _corrupted_copy(
        small_frames,
        tmp_path / "truncated",
        lambda r: (r / first).write_bytes((small_frames / first).read_bytes()[:300]),
    )
    with pytest.raises(ValueError, match=rf"{first}: not a readable image"):
        run_frames_demo(export_model, root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert len(read_frame_annotations(small_frames)) == len(lines) - 1  # the intact copy still reads
