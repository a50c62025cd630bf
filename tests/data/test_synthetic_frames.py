"""The synthetic camera frames: determinism, ground-truth boxes against the renderer's silhouettes and the
figure's analytic extent, occlusion bookkeeping, identities of the crop set's test split, atomic writes."""

from __future__ import annotations

import hashlib
import pathlib

import numpy as np
import pytest
from PIL import Image

from hacnn_tf.data import load_dataset
from hacnn_tf.data.synthetic import Renderer, SyntheticConfig, draw_world, figure_extent, generate
from hacnn_tf.data.synthetic_frames import FramesConfig, generate_frames, main, plan_frames, read_frame_annotations

CROPS = SyntheticConfig(
    num_train_ids=4,
    num_test_ids=6,
    num_cameras=3,
    images_per_id_per_camera=(2, 2),
    num_distractors=2,
    num_junk=1,
    seed=5,
)
TINY = FramesConfig(CROPS, num_people=5, num_frames=3, height=192, width=320)


def file_hashes(root: pathlib.Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return generate_frames(tmp_path_factory.mktemp("frames") / "tiny", TINY)


def test_deterministic_per_seed(frames: pathlib.Path, tmp_path: pathlib.Path) -> None:
    again = generate_frames(tmp_path / "again", TINY)
    other = generate_frames(
        tmp_path / "other",
        FramesConfig(SyntheticConfig(**{**vars(CROPS), "seed": 6}), num_people=5, num_frames=3, height=192, width=320),
    )
    hashes = file_hashes(frames)
    assert len([name for name in hashes if name.endswith(".jpg")]) == 3 * 3
    assert file_hashes(again) == hashes
    other_hashes = file_hashes(other)
    assert not any(other_hashes[name] == hashes[name] for name in hashes if name.endswith(".jpg"))


def test_boxes_are_the_silhouettes_drawn_alone(frames: pathlib.Path) -> None:
    """Every box equals the bounding box of the person's silhouette painted alone on a whole frame, meets the
    figure's analytic extent on the pixel grid, lies inside the frame; visibility is the fraction of that silhouette
    not covered by the people in front (painted later)."""
    table = read_frame_annotations(frames)
    _, people, _ = draw_world(CROPS)
    renderer = Renderer(TINY.height, TINY.width)
    canvas = np.zeros((TINY.height, TINY.width, 3), np.float32)
    placements = plan_frames(TINY)
    assert len(table) == len(placements) > 0
    masks = [renderer.figure(canvas, np.random.default_rng(0), people[p.person], p.fh, p.cx, p.top) for p in placements]
    for row, placement, mask in zip(table.itertuples(), placements, masks):
        assert (row.camera, row.frame, row.track, row.pid) == (
            placement.camera + 1,
            placement.frame,
            placement.track,
            placement.pid,
        )
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert (row.x1, row.y1, row.x2, row.y2) == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        left, top, right, bottom = figure_extent(people[placement.person])
        analytic = np.array(
            [
                placement.cx + left * placement.fh,
                placement.top + top * placement.fh,
                placement.cx + right * placement.fh,
                placement.top + bottom * placement.fh,
            ]
        )
        # The renderer samples at integer coordinates, so the box starts at the first integer past the extent's
        # start and ends one past the last integer before its end; 0.1 pixel for the discrete pixel grid.
        offsets = np.array([row.x1, row.y1, row.x2, row.y2]) - analytic
        assert ((offsets > -0.1) & (offsets < 1.1)).all(), offsets
        assert 0 <= row.x1 < row.x2 <= TINY.width and 0 <= row.y1 < row.y2 <= TINY.height
        later = [
            m
            for p, m in zip(placements, masks)
            if (p.camera, p.frame) == (placement.camera, placement.frame)
            and placements.index(p) > placements.index(placement)
        ]
        covered = np.logical_or.reduce([np.zeros_like(mask), *later])
        assert row.visibility == pytest.approx((mask & ~covered).sum() / mask.sum(), abs=5e-5)
    assert (table["visibility"] < 1).any()  # people do occlude each other
    with Image.open(table["path"].iloc[0]) as image:
        assert image.size == (TINY.width, TINY.height) and image.mode == "RGB"


def test_identities_are_the_crop_sets_test_identities_across_frames_and_cameras(
    frames: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    table = read_frame_annotations(frames)
    crops = load_dataset("market1501", generate(tmp_path / "crops", **vars(CROPS)), verify=False)
    assert table["pid"].nunique() == 5 and set(table["pid"]) <= set(crops.query["pid"])
    tracks = table.groupby("track")
    assert (tracks["pid"].nunique() == 1).all() and (tracks["camera"].nunique() == 1).all()
    assert tracks["frame"].apply(list).tolist() == [[0, 1, 2]] * len(tracks)  # in every frame of its camera
    assert (table.groupby("pid")["camera"].nunique() >= 2).all()  # everyone has a match in another camera
    assert not table.duplicated(["file", "pid"]).any()


def test_idempotent_atomic_and_refusals(
    frames: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture
) -> None:
    marker = frames / ".synthetic_frames.json"
    stamp = marker.stat().st_mtime_ns
    assert generate_frames(frames, TINY) == frames and marker.stat().st_mtime_ns == stamp
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no generated set"):
        generate_frames(other, TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]
    with pytest.raises(ValueError, match="num_people must be within 1..6"):
        generate_frames(tmp_path / "x", FramesConfig(CROPS, num_people=7))
    with pytest.raises(ValueError, match="cameras_per_person must be within 2..3"):
        generate_frames(tmp_path / "x", FramesConfig(CROPS, num_people=5, cameras_per_person=(2, 4)))
    with pytest.raises(FileNotFoundError, match="no annotations.csv"):
        read_frame_annotations(other)
    (other / "annotations.csv").write_text("file,camera\nc1/000.jpg,1\n")
    with pytest.raises(ValueError, match="lacks the columns"):
        read_frame_annotations(other)
    main(["--root", str(tmp_path / "cli"), "--num-people", "3", "--num-frames", "2"])
    assert "8 frames" in capsys.readouterr().out
