"""Names of the exported SavedModel's signatures, inputs and outputs: the contract between the exporter, the
TF Serving clients, the warm-up records and the converters."""

SERVING_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "embed_images"
# Detector boxes of camera frames: one row per frame, its boxes padded to B per row (a row shares the batch axis of
# every input, as TF Serving's row format and its server-side batching require).
BOXES_SIGNATURE = "embed_boxes"
BOXES_PIXELS_SIGNATURE = "embed_boxes_pixels"
# The most boxes per row (per frame) the box signatures take by default (`export_saved_model(max_boxes=...)`): a
# crowded 1080p frame's detections with room to spare; a row of more is refused with InvalidArgument naming the
# limit, and the clients refuse a wider `boxes_per_row` before building a request.
MAX_BOXES = 256
BYTES_INPUT = "image_bytes"
IMAGES_INPUT = "images"
FRAME_BYTES_INPUT = "frame_bytes"
FRAMES_INPUT = "frames"
BOXES_INPUT = "boxes"
OUTPUT = "embedding"
SERVE_TAG = "serve"
