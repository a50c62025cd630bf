"""Attention figures: HA-CNN's soft attention maps as heat maps and its hard attention regions as boxes.

Coordinates: an image of `(H, W)` pixels spans `[0, W] x [0, H]` (pixel `i` covers `[i, i + 1)`), and the
feature map of each level is taken to cover the whole image, its pixel `k` covering `[k * s, (k + 1) * s)` with
stride `s = H / H_in`. A normalised coordinate `u` in `[-1, 1]` of a level's input map is then at pixel
`(u + 1) / 2 * H` with `align_corners=False` (-1 and +1 are the outer edges of the map; exact under this
convention), and at `((u + 1) / 2 * (H_in - 1) + 0.5) * s` with `align_corners=True` (-1 and +1 are the centres of
the first and last feature pixels). The convention is the usual one; the receptive field of the stride-2 stem
convolution is in fact centred half an input pixel before it, a shift this drawing ignores.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Sequence

import keras
import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.patches import Patch, Rectangle

from hacnn_tf.layers.interpolation import half_pixel_resize_matrix
from hacnn_tf.layers.preprocessing import model_inputs
from hacnn_tf.model import HACNN, NUM_LEVELS, level_input_sizes
from hacnn_tf.visualization.rendering import new_figure, save_figure

__all__ = [
    "ATTENTION_LEGEND_HEIGHT",
    "ATTENTION_TITLE_HEIGHT",
    "LevelAttention",
    "attention_boxes",
    "attention_heatmaps",
    "compute_attention",
    "draw_attention_panel",
    "level_input_sizes",
    "plot_attention",
    "region_colors",
]

# Inches above the grid of `plot_attention` for the column titles.
ATTENTION_TITLE_HEIGHT = 0.3
# Inches below the grid of `plot_attention` for the legend of the hard attention boxes (a model with them only).
ATTENTION_LEGEND_HEIGHT = 0.3


@dataclasses.dataclass(frozen=True)
class LevelAttention:
    """The attention of one level for `N` images of `(H, W)` pixels.

    Attributes:
        heatmaps: `(N, H, W)` float32 soft attention in `[0, 1]` (see `attention_heatmaps`).
        translations: `(N, T, 2)` float32 hard attention translations `(t_x, t_y)`.
        boxes: `(N, T, 4)` float64 region boxes `(x0, y0, x1, y1)` in image pixels (see `attention_boxes`), or
            None for a model without the local branch (`learn_region=False`), whose translations crop nothing.
    """

    heatmaps: np.ndarray
    translations: np.ndarray
    boxes: np.ndarray | None


def attention_boxes(
    translations: np.ndarray,
    image_size: Sequence[int],
    scale: Sequence[float] | None = None,
    align_corners: bool = False,
    feature_size: Sequence[int] | None = None,
) -> np.ndarray:
    """Hard attention regions in image pixels, `(N, T, 4)` float64 rows `(x0, y0, x1, y1)`.

    Region `r` spans `t_x +- scale_x` and `t_y +- scale_y` in the normalised coordinates of its level's input map
    (the sampler's `theta = [[scale_x, 0, t_x], [0, scale_y, t_y]]`), mapped to the image as the module docstring
    says. Boxes are not clipped: with `t_x != 0` a full-width region reaches outside the image.

    Args:
        translations: `(N, T, 2)` translations `(t_x, t_y)`, as `HACNN.attention` returns.
        image_size: `(H, W)` of the image.
        scale: `(scale_y, scale_x)`, the sampler's scale (`model.samplers[l].scale`); default `(1 / T, 1.0)`.
        align_corners: the model's sampler convention (`model.align_corners`).
        feature_size: `(H_in, W_in)` of the level's input map (`level_input_sizes`); needed with `align_corners`.
    """
    translations = np.asarray(translations, dtype=np.float64)
    if translations.ndim != 3 or translations.shape[-1] != 2:
        raise ValueError(f"translations must be (N, T, 2); got shape {translations.shape}")
    scale_y, scale_x = (1.0 / translations.shape[1], 1.0) if scale is None else (float(s) for s in scale)
    height, width = (float(n) for n in image_size)
    if align_corners:
        if feature_size is None:
            raise ValueError("attention_boxes needs the level's feature_size (H_in, W_in) when align_corners=True")
        rows, cols = (int(n) for n in feature_size)

        def to_x(u):
            return ((u + 1.0) / 2.0 * (cols - 1) + 0.5) * (width / cols)

        def to_y(u):
            return ((u + 1.0) / 2.0 * (rows - 1) + 0.5) * (height / rows)
    else:

        def to_x(u):
            return (u + 1.0) / 2.0 * width

        def to_y(u):
            return (u + 1.0) / 2.0 * height

    t_x, t_y = translations[..., 0], translations[..., 1]
    return np.stack([to_x(t_x - scale_x), to_y(t_y - scale_y), to_x(t_x + scale_x), to_y(t_y + scale_y)], axis=-1)


def attention_heatmaps(soft_map: np.ndarray, image_size: Sequence[int]) -> np.ndarray:
    """A level's soft attention `(N, h, w, C)` as `(N, H, W)` float32 heat maps in `[0, 1]`.

    The mean over channels, resized bilinearly to `image_size` (half-pixel centres, edges clamped), then min-max
    normalised per image; an image whose map is constant gets zeros.
    """
    soft_map = np.asarray(soft_map, dtype=np.float64)
    if soft_map.ndim != 4:
        raise ValueError(f"soft_map must be (N, h, w, C); got shape {soft_map.shape}")
    mean = soft_map.mean(axis=-1)
    height, width = (int(n) for n in image_size)
    resized = np.einsum(
        "yi,nij,xj->nyx",
        half_pixel_resize_matrix(mean.shape[1], height),
        mean,
        half_pixel_resize_matrix(mean.shape[2], width),
    )
    low = resized.min(axis=(1, 2), keepdims=True)
    span = resized.max(axis=(1, 2), keepdims=True) - low
    normalised = np.divide(resized - low, span, out=np.zeros_like(resized), where=span > 0)
    return normalised.astype(np.float32)


def _check_pixels(images, input_size: Sequence[int]) -> np.ndarray:
    pixels = np.asarray(images)
    if pixels.ndim == 3:
        pixels = pixels[None]
    if pixels.ndim != 4 or pixels.shape[1:] != (*tuple(input_size), 3):
        raise ValueError(
            f"images must be (N, {input_size[0]}, {input_size[1]}, 3) RGB pixels in [0, 255] at the "
            f"model's input size; got shape {np.shape(images)}"
        )
    return pixels.astype(np.float32)


def compute_attention(model: HACNN, images, batch_size: int = 32) -> list[LevelAttention]:
    """Runs `model.attention` on `(N, H, W, 3)` RGB pixels in `[0, 255]` (uint8 or float, at `model.input_size`)
    and returns the three levels' heat maps, translations and boxes.

    The pixels are ImageNet-normalised first unless the model does it itself (`model.include_preprocessing`).
    """
    pixels = _check_pixels(images, model.input_size)
    soft_maps: list[list[np.ndarray]] = [[] for _ in range(NUM_LEVELS)]
    translations: list[list[np.ndarray]] = [[] for _ in range(NUM_LEVELS)]
    for start in range(0, len(pixels), batch_size):
        batch = pixels[start : start + batch_size]
        inputs = model_inputs(model, batch)
        outputs = model.attention(inputs)
        for level in range(NUM_LEVELS):
            soft_maps[level].append(keras.ops.convert_to_numpy(outputs["soft_maps"][level]).astype(np.float32))
            translations[level].append(keras.ops.convert_to_numpy(outputs["translations"][level]).astype(np.float32))
    feature_sizes = level_input_sizes(model.input_size)
    levels = []
    for level in range(NUM_LEVELS):
        level_translations = np.concatenate(translations[level])
        boxes = None
        if model.learn_region:
            boxes = attention_boxes(
                level_translations,
                model.input_size,
                model.samplers[level].scale,
                model.align_corners,
                feature_sizes[level],
            )
        heatmaps = attention_heatmaps(np.concatenate(soft_maps[level]), model.input_size)
        levels.append(LevelAttention(heatmaps, level_translations, boxes))
    return levels


def region_colors(num_regions: int) -> list[tuple[float, float, float]]:
    """One RGB colour (floats in [0, 1]) per region: matplotlib's `tab10` palette, repeated beyond 10 regions."""
    palette = matplotlib.colormaps["tab10"].colors
    return [tuple(float(c) for c in palette[r % len(palette)]) for r in range(num_regions)]


def draw_attention_panel(
    axes: Axes,
    image: np.ndarray,
    heatmap: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
    colors: Sequence | None = None,
    alpha: float = 0.5,
    cmap: str = "jet",
    linewidth: float = 1.5,
    outline: str | None = "white",
) -> None:
    """Draws one `(H, W, 3)` image (pixels in [0, 255]) on `axes` filling `[0, W] x [0, H]`, optionally the
    `(H, W)` heat map over it (`cmap`, opacity `alpha`) and `(T, 4)` boxes `(x0, y0, x1, y1)` in `colors`
    (default `region_colors(T)`) over a thin `outline` (None: none), clipped to the image; no ticks or frame."""
    height, width = image.shape[:2]
    extent = (0, width, height, 0)
    axes.imshow(np.clip(np.asarray(image, dtype=np.float32), 0, 255) / 255.0, extent=extent, interpolation="nearest")
    if heatmap is not None:
        axes.imshow(heatmap, extent=extent, cmap=cmap, vmin=0.0, vmax=1.0, alpha=alpha, interpolation="nearest")
    if boxes is not None:
        colors = region_colors(len(boxes)) if colors is None else colors
        effects = None if outline is None else [patheffects.withStroke(linewidth=linewidth + 1.0, foreground=outline)]
        for (x0, y0, x1, y1), color in zip(np.asarray(boxes), colors):
            axes.add_patch(
                Rectangle(
                    (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=linewidth, path_effects=effects
                )
            )
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    axes.set_axis_off()


def plot_attention(
    model: HACNN,
    images,
    path: str | os.PathLike[str],
    panel_width: float = 1.2,
    dpi: float = 100,
    alpha: float = 0.5,
    cmap: str = "jet",
    linewidth: float = 1.5,
) -> pathlib.Path:
    """Writes a PNG of the model's attention on `images`: one row per image, columns the image and, for levels
    1-3, the soft attention heat map over it with that level's `T` hard attention boxes (one colour per region,
    `region_colors`, named in a legend under the grid; no boxes and no legend without the local branch).

    `images`: `(N, H, W, 3)` RGB pixels in `[0, 255]` (uint8 or float) at `model.input_size`, normalised for the
    model as `compute_attention` says. Works for any `HACNN` (trained, imported from torchreid, untrained).
    The figure is `4 * panel_width` inches wide and `N * panel_width * H / W + ATTENTION_TITLE_HEIGHT` tall
    (`+ ATTENTION_LEGEND_HEIGHT` with boxes), at `dpi`.
    """
    pixels = _check_pixels(images, model.input_size)
    levels = compute_attention(model, pixels)
    height, width = model.input_size
    rows, cols = len(pixels), 1 + NUM_LEVELS
    panel_height = panel_width * height / width
    regions = None if levels[0].boxes is None else levels[0].boxes.shape[1]
    legend_height = ATTENTION_LEGEND_HEIGHT if regions else 0.0
    figure = new_figure((cols * panel_width, rows * panel_height + ATTENTION_TITLE_HEIGHT + legend_height), dpi)
    grid = figure.subplots(rows, cols, squeeze=False)
    titles = ["image", *(f"level {level + 1}" for level in range(NUM_LEVELS))]
    for row in range(rows):
        draw_attention_panel(grid[row, 0], pixels[row])
        for level, attention in enumerate(levels, start=1):
            boxes = None if attention.boxes is None else attention.boxes[row]
            draw_attention_panel(
                grid[row, level],
                pixels[row],
                attention.heatmaps[row],
                boxes,
                alpha=alpha,
                cmap=cmap,
                linewidth=linewidth,
            )
    for col, title in enumerate(titles):
        grid[0, col].set_title(title, fontsize=8)
    if regions:
        handles = [
            Patch(fill=False, edgecolor=color, linewidth=linewidth, label=f"region {region + 1}")
            for region, color in enumerate(region_colors(regions))
        ]
        figure.legend(
            handles=handles,
            loc="outside lower center",
            ncols=regions,
            fontsize=7,
            frameon=False,
            title="hard attention regions (boxes); heat map: soft attention",
            title_fontsize=7,
            handlelength=1.2,
            columnspacing=0.8,
        )
    return save_figure(figure, path)
