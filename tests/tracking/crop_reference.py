"""The documented crop written out independently of `hacnn_tf.tracking` (numpy slicing, one `tf.image.resize` per
crop), and boxes at every edge case."""

import numpy as np
import tensorflow as tf


def reference_crop(frame: np.ndarray, box, input_size) -> np.ndarray | None:
    """The documented crop, written out: clip to the frame, floor/ceil to pixels, slice, resize; None if invalid."""
    box = np.asarray(box, np.float64)
    if not np.isfinite(box).all():
        return None
    height, width = frame.shape[:2]
    x1, x2 = np.clip(box[[0, 2]], 0, width)
    y1, y2 = np.clip(box[[1, 3]], 0, height)
    if x2 <= x1 or y2 <= y1:
        return None
    region = frame[int(np.floor(y1)) : int(np.ceil(y2)), int(np.floor(x1)) : int(np.ceil(x2))].astype(np.float32)
    return tf.image.resize(region, input_size, method="bilinear", antialias=True).numpy()


def reference_embeddings(embed, input_size, frames, boxes) -> np.ndarray:
    """Each box's crop (`reference_crop`) embedded alone by `embed` (`(1, H, W, 3)` pixels -> `(1, D)`), a row of
    zeros for an invalid box, frame by frame."""
    crops = [reference_crop(frame, box, input_size) for frame, frame_boxes in zip(frames, boxes) for box in frame_boxes]
    rows = [None if crop is None else np.asarray(embed(crop[None]), np.float32)[0] for crop in crops]
    dim = next(len(row) for row in rows if row is not None)
    return np.stack([np.zeros(dim, np.float32) if row is None else row for row in rows])


# Boxes at every edge case: inside, at the borders, fractional, 1 and 2 px, larger than the frame, partly and wholly
# outside, zero area, inverted, NaN, infinite.
FRAME_BOXES = np.array(
    [
        [10, 20, 40, 90],
        [0, 0, 30, 60],
        [60, 50, 90, 120],
        [12.4, 33.7, 41.2, 80.9],
        [5, 5, 6, 6],
        [7, 7, 9, 8],
        [-50, -40, 200, 300],
        [70, 100, 130, 160],
        [200, 10, 260, 50],
        [20, 20, 20, 60],
        [30, 40, 10, 20],
        [np.nan, 1, 20, 30],
        [0, 0, np.inf, 50],
    ],
    np.float32,
)
INVALID = [8, 9, 10, 11, 12]
