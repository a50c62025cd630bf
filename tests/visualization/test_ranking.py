"""Ranked lists: the ranking follows the evaluation protocol; the figure has its documented size and frames."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hacnn_tf.visualization import rendering
from hacnn_tf.visualization.ranking import (
    CAPTION_HEIGHT,
    MATCH_COLOR,
    MISMATCH_COLOR,
    choose_queries,
    plot_ranked_lists,
    rank_gallery,
)

QUERY = pd.DataFrame({"pid": [1, 2], "camid": [0, 1]})
GALLERY = pd.DataFrame({"pid": [1, 1, 2, 3, 2, 1], "camid": [0, 1, 0, 2, 1, 2]})
DISTMAT = np.array([[0.1, 0.5, 0.3, 0.2, 0.9, 0.7], [0.4, 0.8, 0.05, 0.6, 0.01, 0.3]])


def test_ranking_skips_same_identity_same_camera_and_marks_matches():
    first, second = rank_gallery(QUERY, GALLERY, DISTMAT, [0, 1], top_k=4)
    # Query 0 (pid 1, cam 0): gallery 0 (pid 1, cam 0) is left out although nearest.
    assert (first.query_index, first.query_pid, first.query_camid) == (0, 1, 0)
    np.testing.assert_array_equal(first.gallery_indices, [3, 2, 1, 5])
    np.testing.assert_allclose(first.distances, [0.2, 0.3, 0.5, 0.7])
    np.testing.assert_array_equal(first.matches, [False, False, True, True])
    np.testing.assert_array_equal(first.camids, [2, 0, 1, 2])
    # Query 1 (pid 2, cam 1): gallery 4 (pid 2, cam 1) is left out; gallery 2 (pid 2, cam 0) is a true match.
    np.testing.assert_array_equal(second.gallery_indices, [2, 5, 0, 3])
    np.testing.assert_array_equal(second.matches, [True, False, False, False])
    np.testing.assert_array_equal(second.pids, [2, 1, 1, 3])
    # A list cannot be longer than what is left of the gallery.
    (only,) = rank_gallery(QUERY, GALLERY, DISTMAT, [1], top_k=10)
    np.testing.assert_array_equal(only.gallery_indices, [2, 5, 0, 3, 1])


def test_ranking_rejects_bad_inputs():
    with pytest.raises(ValueError, match="distmat"):
        rank_gallery(QUERY, GALLERY, DISTMAT[:, :5], [0])
    with pytest.raises(ValueError, match="outside"):
        rank_gallery(QUERY, GALLERY, DISTMAT, [2])
    with pytest.raises(ValueError, match="top_k"):
        rank_gallery(QUERY, GALLERY, DISTMAT, [0], top_k=0)


def test_choose_queries_is_seeded_distinct_and_sorted():
    chosen = choose_queries(100, 5, seed=3)
    assert len(set(chosen.tolist())) == 5 and (np.diff(chosen) > 0).all() and chosen.max() < 100
    np.testing.assert_array_equal(chosen, choose_queries(100, 5, seed=3))
    assert not np.array_equal(chosen, choose_queries(100, 5, seed=4))
    np.testing.assert_array_equal(choose_queries(3, 5), [0, 1, 2])


def _tables(tmp_path):
    """QUERY / GALLERY with grey image files of odd sizes (the figure resizes them)."""

    def with_images(table, prefix):
        paths = []
        for i in range(len(table)):
            path = tmp_path / f"{prefix}{i}.png"
            Image.fromarray(np.full((50 + i, 20 + i, 3), 100 + 10 * i, np.uint8)).save(path)
            paths.append(str(path))
        return table.assign(path=paths)

    return with_images(QUERY, "q"), with_images(GALLERY, "g")


def test_plot_ranked_lists_size_and_frame_colours(tmp_path):
    query, gallery = _tables(tmp_path)
    path = plot_ranked_lists(
        query,
        gallery,
        DISTMAT,
        tmp_path / "ranks.png",
        query_indices=[0, 1],
        top_k=4,
        image_size=(128, 64),
        panel_width=0.9,
        dpi=100,
    )
    with Image.open(path) as image:
        size = image.size
        rgb = np.asarray(image.convert("RGB")).astype(int)
    assert size == (round(5 * 0.9 * 100), round(2 * (0.9 * 2 + CAPTION_HEIGHT) * 100)) == (450, 460)

    def count(color):
        return int((np.abs(rgb - np.round(255 * np.asarray(color))).max(axis=-1) <= 2).sum())

    # 3 true matches and 5 others in the 8 gallery panels: frames of equal size, so the colour areas are 3 : 5.
    green, red = count(MATCH_COLOR), count(MISMATCH_COLOR)
    assert green > 0 and red / green == pytest.approx(5 / 3, rel=0.1)


def test_plot_ranked_lists_draws_queries_with_the_seed(tmp_path):
    query, gallery = _tables(tmp_path)
    path = plot_ranked_lists(query, gallery, DISTMAT, tmp_path / "drawn.png", num_queries=1, top_k=10, seed=0, dpi=50)
    with Image.open(path) as image:
        assert image.size == (round(11 * 0.9 * 50), round((0.9 * 2 + CAPTION_HEIGHT) * 50))
    figure = rendering.new_figure((1, 1), dpi=10)
    assert rendering.figure_pixels(figure).shape == (10, 10, 3)
