"""Names of the exported SavedModel's signatures, inputs and outputs: the contract between the exporter, the
TF Serving clients, the warm-up records and the converters."""

SERVING_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "embed_images"
BYTES_INPUT = "image_bytes"
IMAGES_INPUT = "images"
OUTPUT = "embedding"
SERVE_TAG = "serve"
