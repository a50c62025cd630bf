"""`ReIDEmbedder`: embeddings of the people a detector found in camera frames, for a tracker's appearance cue."""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from hacnn_tf.runtime import Embedder, load_embedder
from hacnn_tf.runtime.keras_model import KerasEmbedder
from hacnn_tf.tracking.crops import crop_boxes

CHANNEL_ORDERS = ("RGB", "BGR")


class ReIDEmbedder:
    """Embeds detector boxes of camera frames with HA-CNN.

    Args:
        model: a path of any exported or saved model (what `hacnn_tf.runtime.load_embedder` reads: `.keras`, a
            torchreid checkpoint, a SavedModel folder, `.tflite`, `.onnx`, OpenVINO `.xml`), an `Embedder`, or a
            Keras `HACNN`.
        channel_order: the channel order of the frames given to `__call__`, `"RGB"` or `"BGR"` (OpenCV's).
        batch_size: crops per call of the embedder (an embedder may split a call further by its own batch size).
        verify, trusted: for a model path, `load_embedder`'s checks before the model runs: the export's
            `manifest.json` sums (unless `verify=False`) and, unless `trusted=True`, the scan of a SavedModel folder
            or `.onnx` file for ops hacnn-tf's exports never hold.

    `embedder(frame, boxes)`: one `(H, W, 3)` frame (uint8, or float 0..255) and its `(B, 4)` boxes; `embedder(frames,
    boxes)`: a sequence of frames (of any sizes, e.g. several cameras) and a sequence of their `(B_i, 4)` boxes. Boxes
    are pixel `x1, y1, x2, y2` as detectors emit them. Returns `(sum B_i, D)` float32 embeddings, frame by frame and
    box by box, the crops of all frames embedded together in batches, cut and embedded a batch at a time (memory does
    not grow with the number of boxes). Crops are cut by
    `hacnn_tf.tracking.crops.crop_boxes` (the exported `embed_boxes` signature's definition); an invalid box (NaN,
    zero area after clipping to the frame) gives a row of zeros.
    """

    def __init__(
        self,
        model: str | os.PathLike | Embedder | keras.Model,
        channel_order: str = "RGB",
        batch_size: int = 64,
        verify: bool = True,
        trusted: bool = False,
    ):
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}; got {channel_order!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        if isinstance(model, (str, os.PathLike)):
            model = load_embedder(model, verify=verify, trusted=trusted)
        elif isinstance(model, keras.Model):
            model = KerasEmbedder(model, batch_size=batch_size)
        elif not isinstance(model, Embedder):
            raise TypeError(f"model must be a model path, an Embedder or a Keras HACNN; got {type(model).__name__}")
        self.embedder = model
        self.channel_order = channel_order
        self.batch_size = batch_size
        self.input_size = tuple(model.input_size)
        frame_spec = lambda dtype: tf.TensorSpec((1, None, None, 3), dtype)
        box_specs = (tf.TensorSpec((None, 4), tf.float32), tf.TensorSpec((None,), tf.int32))
        self._crops = {
            dtype: tf.function(
                lambda frame, boxes, index: crop_boxes(frame, boxes, index, self.input_size),
                input_signature=(frame_spec(dtype), *box_specs),
                autograph=False,
            )
            for dtype in (tf.uint8, tf.float32)
        }

    def __call__(
        self, frames: np.ndarray | Sequence[np.ndarray], boxes: np.ndarray | Sequence[np.ndarray]
    ) -> np.ndarray:
        return self._embed(frames, boxes, self.channel_order)

    def get_features(self, xyxy: np.ndarray, img: np.ndarray) -> np.ndarray:
        """boxmot's ReID backend call (`BaseModelBackend.get_features(xyxys, img)` in
        https://github.com/mikel-brostrom/boxmot, `boxmot/appearance/backends/base_backend.py`): `xyxy (M, 4)` pixel
        boxes in `img`, one BGR `(H, W, 3)` uint8 frame as OpenCV reads it (whatever `channel_order` says) ->
        `(M, D)` float32 features scaled to unit length, as boxmot's backends return them; an invalid box's row
        stays 0 (boxmot would give NaN), and no boxes give `(0, D)` (boxmot: an empty 1-D array)."""
        features = self._embed(img, xyxy, "BGR")
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)

    def _embed(self, frames, boxes, channel_order: str) -> np.ndarray:
        """Crops cut `batch_size` boxes at a time, their valid ones embedded as soon as `batch_size` of them are
        waiting (across frames, in order): at most two batches of crops are held whatever the number of boxes."""
        frames, boxes = _frames_and_boxes(frames, boxes)
        waiting, waiting_rows, embedded, embedded_rows = [], [], [], []

        def embed_waiting(final: bool) -> None:
            crops, rows = np.concatenate(waiting), np.concatenate(waiting_rows)
            waiting.clear()
            waiting_rows.clear()
            ready = len(crops) if final else len(crops) - len(crops) % self.batch_size
            for start in range(0, ready, self.batch_size):
                embedded.append(np.asarray(self.embedder(crops[start : start + self.batch_size]), np.float32))
                embedded_rows.append(rows[start : start + self.batch_size])
            if ready < len(crops):
                waiting.append(crops[ready:])
                waiting_rows.append(rows[ready:])

        offset = 0
        for frame, frame_boxes in zip(frames, boxes):
            dtype = tf.uint8 if frame.dtype == np.uint8 else tf.float32
            pixels = tf.convert_to_tensor(frame[None].astype(dtype.as_numpy_dtype, copy=False))
            for start in range(0, len(frame_boxes), self.batch_size):
                chunk = frame_boxes[start : start + self.batch_size]
                crops, valid = self._crops[dtype](pixels, chunk, np.zeros(len(chunk), np.int32))
                crops, valid = crops.numpy(), valid.numpy()
                waiting.append(
                    np.ascontiguousarray(crops[valid][..., ::-1] if channel_order == "BGR" else crops[valid])
                )
                waiting_rows.append(offset + start + np.flatnonzero(valid))
                if sum(len(crops) for crops in waiting) >= self.batch_size:
                    embed_waiting(final=False)
            offset += len(frame_boxes)
        if waiting:
            embed_waiting(final=True)
        if not embedded:
            # The embedder's empty call gives its feature size when there is nothing else to embed.
            embedded.append(np.asarray(self.embedder(np.zeros((0, *self.input_size, 3), np.float32)), np.float32))
            embedded_rows.append(np.zeros(0, np.int64))
        result = np.zeros((offset, embedded[0].shape[1]), np.float32)
        result[np.concatenate(embedded_rows)] = np.concatenate(embedded)
        return result


def _frames_and_boxes(frames, boxes) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One frame and its boxes, or sequences of both, as lists of `(H, W, 3)` arrays and `(B, 4)` float32 arrays, or a
    `ValueError` naming what is wrong."""
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        frames, boxes = [frames], [boxes]
    elif isinstance(frames, np.ndarray) and frames.ndim != 4:
        raise ValueError(
            f"a frame must be (height, width, 3) pixels (or frames a sequence of them); got an array of "
            f"shape {frames.shape}"
        )
    elif isinstance(boxes, np.ndarray) and boxes.ndim == 2:
        raise ValueError(
            f"several frames ({len(frames)}) take a sequence of (B_i, 4) box arrays, one per frame; got "
            f"one array of shape {boxes.shape}"
        )
    frames, boxes = [np.asarray(frame) for frame in frames], list(boxes)
    if len(frames) != len(boxes):
        raise ValueError(f"got {len(frames)} frames and {len(boxes)} box arrays; give one box array per frame")
    checked = []
    for index, (frame, frame_boxes) in enumerate(zip(frames, boxes)):
        if frame.ndim != 3 or frame.shape[2] != 3 or 0 in frame.shape:
            raise ValueError(f"frame {index} must be (height, width, 3) pixels; got shape {frame.shape}")
        if not (frame.dtype == np.uint8 or np.issubdtype(frame.dtype, np.floating)):
            raise ValueError(f"frame {index} must be uint8 or float pixels 0..255; got dtype {frame.dtype}")
        if frame.dtype != np.uint8:
            # The model gives NaN or overflowing pixels a row of zeros, which would read as an invalid box.
            if not np.isfinite(frame).all():
                raise ValueError(f"frame {index} holds NaN or infinite pixel values")
            if frame.min() < 0 or frame.max() > 255:
                raise ValueError(
                    f"frame {index} holds pixels outside 0..255 (min {frame.min()}, max {frame.max()}); "
                    "frames are RGB or BGR values 0..255, not normalised"
                )
        try:
            frame_boxes = np.asarray(frame_boxes, np.float32)
        except (TypeError, ValueError) as error:
            raise ValueError(f"boxes of frame {index} must be (B, 4) numbers, pixel x1, y1, x2, y2: {error}") from None
        if frame_boxes.size == 0:
            frame_boxes = frame_boxes.reshape(0, 4)
        if frame_boxes.ndim != 2 or frame_boxes.shape[1] != 4:
            raise ValueError(
                f"boxes of frame {index} must be (B, 4) pixel x1, y1, x2, y2; got shape {frame_boxes.shape}"
            )
        checked.append(frame_boxes)
    return frames, checked
