"""Deployment: versioned SavedModel for TF Serving, TFLite conversion and its parity report."""

from hacnn_tf.export.saved_model import export_saved_model
from hacnn_tf.export.tflite import convert_tflite

__all__ = ["convert_tflite", "export_saved_model"]
