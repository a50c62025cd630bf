"""HA-CNN building blocks as registered, serialisable Keras layers."""

from hacnn_tf.layers.attention import ChannelAttention, SoftAttention, SpatialAttention
from hacnn_tf.layers.conv import ConvBNReLU
from hacnn_tf.layers.harmonious import HarmoniousAttention
from hacnn_tf.layers.inception import InceptionA, InceptionB
from hacnn_tf.layers.local_inception import LocalInception
from hacnn_tf.layers.normalization import FusedBatchNormalization
from hacnn_tf.layers.preprocessing import ImageNormalization, normalize_images
from hacnn_tf.layers.region_sampler import RegionSampler
from hacnn_tf.layers.regional import HardRegionalAttention

__all__ = [
    "ChannelAttention",
    "ConvBNReLU",
    "FusedBatchNormalization",
    "HardRegionalAttention",
    "HarmoniousAttention",
    "ImageNormalization",
    "InceptionA",
    "InceptionB",
    "LocalInception",
    "RegionSampler",
    "SoftAttention",
    "SpatialAttention",
    "normalize_images",
]
