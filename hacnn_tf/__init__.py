"""HA-CNN (Li, Zhu, Gong, CVPR 2018) for person re-identification in Keras 3."""

__version__ = "0.1.0"
