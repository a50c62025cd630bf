"""Attention figures: box geometry (against the region sampler), heat maps, the model path and the rendering."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_MODEL
from PIL import Image

from hacnn_tf import HACNN
from hacnn_tf.data.normalization import normalize_images
from hacnn_tf.layers.interpolation import grid_sample_matrix
from hacnn_tf.visualization import rendering
from hacnn_tf.visualization.attention import (
    ATTENTION_LEGEND_HEIGHT,
    ATTENTION_TITLE_HEIGHT,
    attention_boxes,
    attention_heatmaps,
    compute_attention,
    draw_attention_panel,
    level_input_sizes,
    plot_attention,
    region_colors,
)

IMAGE_SIZE = tuple(TINY_MODEL["input_size"])  # (64, 32)


@pytest.fixture(scope="module")
def tiny_model():
    return HACNN(None, **TINY_MODEL)


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, size=(2, *IMAGE_SIZE, 3), dtype=np.uint8)


def _set_translations(model, level: int, translations: np.ndarray, kernel_std: float = 0.0, seed: int = 0) -> None:
    """Hard attention of `level` outputs `translations` (T, 2) whatever the input (kernel 0), or around them."""
    fc = model.attentions[level].hard_attention.fc
    kernel = np.random.default_rng(seed).normal(0.0, kernel_std, size=fc.kernel.shape) if kernel_std else 0.0
    fc.kernel.assign(np.broadcast_to(kernel, fc.kernel.shape).astype("float32"))
    fc.bias.assign(np.arctanh(np.asarray(translations, "float64")).reshape(-1).astype("float32"))


def test_zero_translation_is_the_central_stripe_over_the_full_width():
    boxes = attention_boxes(np.zeros((1, 4, 2)), IMAGE_SIZE)
    np.testing.assert_allclose(boxes, np.tile([0.0, 24.0, 32.0, 40.0], (1, 4, 1)))


def test_translations_shift_the_box_by_half_the_image_per_unit():
    boxes = attention_boxes(np.array([[[0.0, 0.5], [0.5, 0.0], [-0.5, -0.75]]]), IMAGE_SIZE, scale=(0.25, 1.0))
    np.testing.assert_allclose(
        boxes[0],
        [
            [0, 40, 32, 56],  # t_y = 0.5: a quarter of the height lower
            [8, 24, 40, 40],  # t_x = 0.5: a quarter of the width right
            [-8, 0, 24, 16],
        ],
    )  # unclipped; top stripe
    # The default scale is (1 / T, 1).
    np.testing.assert_allclose(attention_boxes(np.zeros((2, 2, 2)), IMAGE_SIZE)[..., 1::2], [[[16, 48]] * 2] * 2)


def test_align_corners_maps_the_extremes_to_feature_pixel_centres():
    # Level 1 of a 64 x 32 image: a 32 x 16 map, stride 2; -1 / +1 are the centres of its first / last pixel.
    assert level_input_sizes(IMAGE_SIZE) == [(32, 16), (16, 8), (8, 4)]
    boxes = attention_boxes(
        np.zeros((1, 1, 2)), IMAGE_SIZE, scale=(0.25, 1.0), align_corners=True, feature_size=(32, 16)
    )
    np.testing.assert_allclose(boxes[0, 0], [1.0, (0.375 * 31 + 0.5) * 2, 31.0, (0.625 * 31 + 0.5) * 2])
    with pytest.raises(ValueError, match="feature_size"):
        attention_boxes(np.zeros((1, 1, 2)), IMAGE_SIZE, align_corners=True)


@pytest.mark.parametrize("align_corners", [False, True])
def test_boxes_agree_with_the_region_sampler_positions(align_corners):
    """The box edges are where the sampler's first and last rows read the feature map (mapped to the image)."""
    rows, image_height, scale, t = 32, 64, 0.25, 0.3
    weights = np.asarray(grid_sample_matrix(tf.constant(t, tf.float64), scale, rows, align_corners))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)  # every sample inside the map
    positions = weights @ np.arange(rows)  # feature pixel index each output row reads, centre at index + 0.5
    stride = image_height / rows
    if align_corners:  # the box runs through the outermost sampling points
        expected = ((positions[0] + 0.5) * stride, (positions[-1] + 0.5) * stride)
    else:  # the box is the footprint of the samples: half a sample step beyond the outermost points
        half_step = 0.5 * (positions[1] - positions[0])
        expected = ((positions[0] + 0.5 - half_step) * stride, (positions[-1] + 0.5 + half_step) * stride)
    box = attention_boxes(
        np.array([[[0.0, t]]]),
        (image_height, 32),
        scale=(scale, 1.0),
        align_corners=align_corners,
        feature_size=(rows, 16),
    )[0, 0]
    np.testing.assert_allclose(box[[1, 3]], expected, atol=1e-4)


def test_heatmap_is_the_channel_mean_upsampled_bilinearly_and_normalised():
    mean = np.array([[0.0, 4.0], [8.0, 12.0]])
    soft_map = np.stack([mean - 1.0, mean + 1.0], axis=-1)[None]  # (1, 2, 2, 2), channel mean = `mean`
    weights = np.array([0.0, 0.25, 0.75, 1.0])  # half-pixel centres of 4 outputs over 2 inputs, edges clamped
    expected = (8.0 * weights[:, None] + 4.0 * weights[None, :]) / 12.0
    heatmap = attention_heatmaps(soft_map, (4, 4))
    assert heatmap.shape == (1, 4, 4) and heatmap.dtype == np.float32
    np.testing.assert_allclose(heatmap[0], expected, atol=1e-6)
    # Same as TensorFlow's bilinear resize (no antialiasing) followed by min-max normalisation, on a random map.
    random_map = np.random.default_rng(1).random((2, 4, 2, 3))
    resized = tf.image.resize(random_map.mean(-1, keepdims=True), (64, 32), method="bilinear").numpy()[..., 0]
    low, high = resized.min(axis=(1, 2), keepdims=True), resized.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(attention_heatmaps(random_map, (64, 32)), (resized - low) / (high - low), atol=1e-5)
    np.testing.assert_array_equal(attention_heatmaps(np.ones((1, 3, 3, 2)), (6, 6)), np.zeros((1, 6, 6)))


def test_model_with_known_translations_puts_the_boxes_there(pixels):
    model = HACNN(None, **TINY_MODEL)
    stripes = np.array([[0.0, -0.75], [0.0, -0.25], [0.0, 0.25], [0.0, 0.75]])
    shifted = np.array([[0.5, -0.5], [0.5, 0.0], [0.5, 0.5], [-0.5, 0.5]])
    _set_translations(model, 0, stripes)
    _set_translations(model, 1, shifted)
    _set_translations(model, 2, np.zeros((4, 2)))
    levels = compute_attention(model, pixels)
    np.testing.assert_allclose(levels[0].translations, np.broadcast_to(stripes, (2, 4, 2)), atol=1e-6)
    np.testing.assert_allclose(
        levels[0].boxes[1], [[0, 0, 32, 16], [0, 16, 32, 32], [0, 32, 32, 48], [0, 48, 32, 64]], atol=1e-4
    )
    np.testing.assert_allclose(
        levels[1].boxes[0], [[8, 8, 40, 24], [8, 24, 40, 40], [8, 40, 40, 56], [-8, 40, 24, 56]], atol=1e-4
    )
    np.testing.assert_allclose(levels[2].boxes, np.tile([0, 24, 32, 40], (2, 4, 1)), atol=1e-4)
    for level in levels:
        assert level.heatmaps.shape == (2, *IMAGE_SIZE) and level.heatmaps.dtype == np.float32
        assert 0.0 <= level.heatmaps.min() and level.heatmaps.max() <= 1.0


def test_images_are_normalised_unless_the_model_does_it(tiny_model, pixels, monkeypatch):
    for level in range(3):  # translations that depend on the input
        _set_translations(tiny_model, level, np.zeros((4, 2)), kernel_std=2.0, seed=level)
    seen = []
    original = HACNN.attention
    monkeypatch.setattr(
        HACNN, "attention", lambda self, images: seen.append(np.asarray(images)) or original(self, images)
    )
    levels = compute_attention(tiny_model, pixels)
    np.testing.assert_allclose(seen[-1], np.asarray(normalize_images(pixels)), atol=1e-6)
    direct = original(tiny_model, normalize_images(pixels))
    for level in range(3):
        np.testing.assert_allclose(levels[level].translations, np.asarray(direct["translations"][level]), atol=1e-6)
        np.testing.assert_allclose(
            levels[level].heatmaps, attention_heatmaps(np.asarray(direct["soft_maps"][level]), IMAGE_SIZE), atol=1e-5
        )
    assert np.ptp(levels[0].translations, axis=0).max() > 1e-3  # the two images do get different regions

    raw = HACNN(None, include_preprocessing=True, **TINY_MODEL)
    raw.set_weights(tiny_model.get_weights())
    raw_levels = compute_attention(raw, pixels)
    np.testing.assert_array_equal(seen[-1], pixels.astype("float32"))  # the model normalises them itself
    for ours, theirs in zip(raw_levels, levels):
        np.testing.assert_allclose(ours.translations, theirs.translations, atol=1e-5)
    # Without the local branch there is nothing to box.
    assert all(
        level.boxes is None for level in compute_attention(HACNN(None, learn_region=False, **TINY_MODEL), pixels[:1])
    )
    with pytest.raises(ValueError, match="model's input size"):
        compute_attention(tiny_model, np.zeros((1, 32, 32, 3)))


def _coloured_bounding_box(rgb: np.ndarray, color) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the pixels within 40 of `color` (RGB 0..255)."""
    rows, cols = np.nonzero(np.abs(rgb.astype(int) - np.asarray(color)).max(axis=-1) < 40)
    return rows.min(), rows.max(), cols.min(), cols.max()


@pytest.mark.parametrize("t_y, rows", [(0.0, (24, 40)), (0.5, (40, 56))])
def test_drawn_box_lands_on_the_expected_pixels(t_y, rows):
    zoom = 4  # figure pixels per image pixel; the axes fill the figure
    figure = rendering.new_figure((32 * zoom / 100, 64 * zoom / 100), dpi=100, layout=None)
    axes = figure.add_axes((0, 0, 1, 1))
    boxes = attention_boxes(np.array([[[0.0, t_y]]]), IMAGE_SIZE, scale=(0.25, 1.0))[0]
    draw_attention_panel(
        axes, np.full((*IMAGE_SIZE, 3), 128, np.uint8), boxes=boxes, colors=[(1.0, 0.0, 0.0)], linewidth=1.0
    )
    rgb = rendering.figure_pixels(figure)
    assert rgb.shape == (64 * zoom, 32 * zoom, 3)
    row0, row1, col0, col1 = _coloured_bounding_box(rgb, (255, 0, 0))
    assert abs(row0 - rows[0] * zoom) <= 2 and abs(row1 - rows[1] * zoom) <= 2
    assert (col0, col1) == (0, 32 * zoom - 1)  # full width: the vertical edges are on the image border
    assert (np.abs(rgb[rows[0] * zoom + 8 : rows[1] * zoom - 8, 8:-8].astype(int) - 128) <= 1).all()  # inside: image


def test_plot_attention_writes_a_png_of_the_documented_size(tmp_path, tiny_model, pixels):
    path = plot_attention(tiny_model, pixels, tmp_path / "attention.png", panel_width=1.2, dpi=100)
    with Image.open(path) as image:
        size = image.size
    assert (
        size
        == (round(4 * 1.2 * 100), round((2 * 1.2 * 64 / 32 + ATTENTION_TITLE_HEIGHT + ATTENTION_LEGEND_HEIGHT) * 100))
        == (480, 540)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attention.png"]
    # The legend row names the boxes' colours; a model without boxes has neither.
    with Image.open(path) as image:
        with_legend = np.asarray(image.convert("RGB"))
    plain = plot_attention(HACNN(None, learn_region=False, **TINY_MODEL), pixels, tmp_path / "plain.png")
    with Image.open(plain) as image:
        assert image.size == (480, 510)
    legend_rows = with_legend[-round(ATTENTION_LEGEND_HEIGHT * 100) :]
    for color in region_colors(tiny_model.num_regions):
        assert (np.abs(legend_rows.astype(int) - np.round(np.array(color) * 255)).max(-1) <= 2).any(), color


def test_plot_attention_on_a_torchreid_model(tmp_path, torchreid_hacnn):
    import torch

    from hacnn_tf import from_torchreid

    checkpoint = tmp_path / "hacnn.pth"
    torch.save(torchreid_hacnn.HACNN(5, use_gpu=False).state_dict(), checkpoint)
    model = from_torchreid(checkpoint)
    images = np.random.default_rng(2).uniform(0, 255, size=(1, 160, 64, 3)).astype("float32")
    levels = compute_attention(model, images)
    # torchreid initialises the hard attention to stacked stripes: centres tanh((2r + 1) / 4 - 1).
    centres = np.tanh([-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(
        levels[0].boxes[0, :, [1, 3]].T,
        np.stack([(centres - 0.25 + 1) * 80, (centres + 0.25 + 1) * 80], axis=-1),
        atol=1e-3,
    )
    path = plot_attention(model, images, tmp_path / "torchreid.png", panel_width=1.0, dpi=50)
    with Image.open(path) as image:
        assert image.size == (200, round((160 / 64 + ATTENTION_TITLE_HEIGHT + ATTENTION_LEGEND_HEIGHT) * 50))
