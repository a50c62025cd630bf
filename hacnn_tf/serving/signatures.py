"""Names of the exported SavedModel's signatures, inputs and outputs: the contract between the exporter, the
TF Serving clients, the warm-up records and the converters."""

SERVING_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "embed_images"
# Detector boxes of camera frames: one row per frame, its boxes padded to B per row (a row shares the batch axis of
# every input, as TF Serving's row format and its server-side batching require).
BOXES_SIGNATURE = "embed_boxes"
BOXES_PIXELS_SIGNATURE = "embed_boxes_pixels"
BYTES_INPUT = "image_bytes"
IMAGES_INPUT = "images"
FRAME_BYTES_INPUT = "frame_bytes"
FRAMES_INPUT = "frames"
BOXES_INPUT = "boxes"
OUTPUT = "embedding"
SERVE_TAG = "serve"
