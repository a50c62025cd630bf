"""Deployment: versioned SavedModel for TF Serving (float32, bf16, fp16), TFLite, ONNX and OpenVINO conversions, the
manifests of the exported folders, and parity checks against the Keras model."""

from hacnn_tf.export.all import FORMATS, export_all
from hacnn_tf.export.onnx import convert_onnx
from hacnn_tf.export.openvino import convert_openvino
from hacnn_tf.export.saved_model import export_saved_model
from hacnn_tf.export.tflite import convert_tflite
from hacnn_tf.manifest import verify_manifest, write_manifest

__all__ = [
    "FORMATS",
    "convert_onnx",
    "convert_openvino",
    "convert_tflite",
    "export_all",
    "export_saved_model",
    "verify_manifest",
    "write_manifest",
]
