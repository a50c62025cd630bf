"""HA-CNN (Li, Zhu, Gong, "Harmonious Attention Network for Person Re-Identification", CVPR 2018) in Keras 3."""

from hacnn_tf._startup import import_tensorflow_quietly

import_tensorflow_quietly()

from hacnn_tf import (
    losses,  # registers the hacnn_tf> losses that compiled .keras checkpoints reference
    runtime,  # the Embedder protocol and load_embedder
)
from hacnn_tf.convert.torchreid import from_torchreid
from hacnn_tf.data.hacnn_preprocessor import HACNNPreprocessor
from hacnn_tf.data.normalization import normalize_images
from hacnn_tf.model import HACNN
from hacnn_tf.models import HACNNBackbone, HACNNReID

__version__ = "0.1.0"

__all__ = [
    "HACNN",
    "HACNNBackbone",
    "HACNNPreprocessor",
    "HACNNReID",
    "from_torchreid",
    "losses",
    "normalize_images",
    "runtime",
    "__version__",
]
