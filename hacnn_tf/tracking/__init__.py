"""Tracking: embed the people a detector found in camera frames (`ReIDEmbedder`), crops cut as the exported
`embed_boxes` signatures cut them (`crop_boxes`), a bounded chunk at a time (`embed_boxes`)."""

from hacnn_tf.tracking.crops import (
    CHUNK_SIZE,
    crop_boxes,
    embed_boxes,
    embed_encoded_frames,
    embed_frame_boxes,
    embed_valid_crops,
)
from hacnn_tf.tracking.embedder import ReIDEmbedder

__all__ = [
    "CHUNK_SIZE",
    "ReIDEmbedder",
    "crop_boxes",
    "embed_boxes",
    "embed_encoded_frames",
    "embed_frame_boxes",
    "embed_valid_crops",
]
