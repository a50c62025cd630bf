"""Tracking: embed the people a detector found in camera frames (`ReIDEmbedder`), crops cut as the exported
`embed_boxes` signatures cut them (`crop_boxes`)."""

from hacnn_tf.tracking.crops import crop_boxes, crop_encoded_frames, crop_frame_boxes, embed_valid_crops
from hacnn_tf.tracking.embedder import ReIDEmbedder

__all__ = ["ReIDEmbedder", "crop_boxes", "crop_encoded_frames", "crop_frame_boxes", "embed_valid_crops"]
