"""`HACNN`, the Harmonious Attention CNN (Li, Zhu, Gong, CVPR 2018, Fig. 2) built from its settings: the
`HACNNReID` task over a `HACNNBackbone` (`hacnn_tf.models`), under the name `.keras` files of every version
record (`hacnn_tf>HACNN`)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from hacnn_tf.config import NUM_LEVELS
from hacnn_tf.models import legacy_layout
from hacnn_tf.models.backbone import (
    PAPER_INPUT_SIZE,
    PAPER_LOCAL_SIZE,
    STEM_FILTERS,
    HACNNBackbone,
    l2_normalize,
    level_input_sizes,
    local_sizes,
)
from hacnn_tf.models.reid import HACNNReID

__all__ = [
    "HACNN",
    "NUM_LEVELS",
    "PAPER_INPUT_SIZE",
    "PAPER_LOCAL_SIZE",
    "STEM_FILTERS",
    "l2_normalize",
    "level_input_sizes",
    "local_sizes",
]


@keras.saving.register_keras_serializable(package="hacnn_tf")
class HACNN(HACNNReID):
    """Harmonious Attention CNN for person re-identification: `HACNNReID` over the `HACNNBackbone` these arguments
    describe. Built as torchreid's `HACNN`, whose checkpoints `hacnn_tf.from_torchreid` imports.

    Args:
        num_classes: identities of the training set (one classifier per branch); `None` for a model without
            classifiers (embedding or triplet-only training).
        nchannels, feat_dim, learn_region, num_regions, input_size, local_size, align_corners, reduction,
            include_preprocessing, head_dtype: the backbone's (see `HACNNBackbone`).

    Call: as `HACNNReID`: `model(images, training=...)` -> `embedding`, `global_features`, `local_features`,
    `global_logits`, `local_logits` (float32).

    `.keras` files saved before the backbone/task split (versions 0.1.0 and 0.2) stored the weights under the old
    model's attribute names; `legacy_layout` reads them from there.

    Example:
        >>> model = HACNN(num_classes=751)
        >>> model(keras.random.normal((2, 160, 64, 3)))["embedding"].shape
        TensorShape([2, 1024])
    """

    def __init__(
        self,
        num_classes: int | None,
        nchannels: Sequence[int] = (128, 256, 384),
        feat_dim: int = 512,
        learn_region: bool = True,
        num_regions: int = 4,
        input_size: Sequence[int] = PAPER_INPUT_SIZE,
        local_size: Sequence[int] | None = None,
        align_corners: bool = False,
        reduction: int = 16,
        include_preprocessing: bool = False,
        head_dtype=None,
        **kwargs,
    ):
        backbone = HACNNBackbone(
            nchannels=nchannels,
            feat_dim=feat_dim,
            learn_region=learn_region,
            num_regions=num_regions,
            input_size=input_size,
            local_size=local_size,
            align_corners=align_corners,
            reduction=reduction,
            include_preprocessing=include_preprocessing,
            head_dtype=head_dtype,
            dtype=kwargs.get("dtype"),
        )
        super().__init__(backbone, num_classes, **kwargs)

    def load_own_variables(self, store):
        super().load_own_variables(store)
        legacy_layout.redirect_legacy_store(self, store)

    def get_config(self):
        config = keras.Model.get_config(self)
        config.update(
            num_classes=self.num_classes,
            nchannels=self.nchannels,
            feat_dim=self.feat_dim,
            learn_region=self.learn_region,
            num_regions=self.num_regions,
            input_size=self.input_size,
            local_size=self.local_size,
            align_corners=self.align_corners,
            reduction=self.reduction,
            include_preprocessing=self.include_preprocessing,
            head_dtype=self.backbone.head_dtype,
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
