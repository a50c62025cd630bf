"""HA-CNN as a backbone (images -> features and attention) and a re-identification task (the backbone plus the
identity classifiers), after keras-hub's backbone/task split."""

from hacnn_tf.models.backbone import HACNNBackbone
from hacnn_tf.models.reid import HACNNReID

__all__ = ["HACNNBackbone", "HACNNReID"]
