"""The HA-CNN re-identification task: `HACNNBackbone` plus one identity classifier per branch."""

from __future__ import annotations

import keras
from keras import ops

from hacnn_tf.models.backbone import HACNNBackbone, dense

# Layers and settings of the backbone that the task answers for (`model.stem`, `model.global_bn`, ...), so that the
# torchreid importer, export and figures address one model whichever they hold. Forwarded by `__getattr__`, not
# properties: Keras' saving walks every attribute `dir()` lists, and each layer is then stored once, under
# `backbone/`.
BACKBONE_ATTRIBUTES = frozenset(
    {
        "preprocessing",
        "stem",
        "global_blocks",
        "attentions",
        "global_fc",
        "global_bn",
        "samplers",
        "local_streams",
        "local_blocks",
        "local_fc",
        "local_bn",
    }
)


@keras.saving.register_keras_serializable(package="hacnn_tf")
class HACNNReID(keras.Model):
    """HA-CNN for person re-identification: a `HACNNBackbone` and, with `num_classes`, a linear identity classifier
    on each branch's feature (each trained with its own cross-entropy), as torchreid's `HACNN`.

    Args:
        backbone: the `HACNNBackbone`.
        num_classes: identities of the training set; `None` for a model without classifiers (embedding or
            triplet-only training).

    Call:
        `model(images, training=...)` -> the same dict in training and inference (float32): `embedding`,
        `global_features`, `local_features` (the backbone's), `global_logits`, `local_logits` (when `num_classes`;
        `local_*` only with the local branch). Inference is `training=False` (the default, also `model.predict`);
        the training losses are keyed by these names, so `model.evaluate` runs them too.
    """

    def __init__(self, backbone: HACNNBackbone, num_classes: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if num_classes is not None and int(num_classes) < 1:
            raise ValueError(f"`num_classes` must be a positive integer or None; got {num_classes}")
        self.backbone = backbone
        self.num_classes = None if num_classes is None else int(num_classes)
        self.global_classifier = self._classifier("global_classifier")
        self.local_classifier = self._classifier("local_classifier") if backbone.learn_region else None
        self.build((None, *backbone.input_size, 3))

    def __getattr__(self, name):
        if name in BACKBONE_ATTRIBUTES and "backbone" in self.__dict__:
            return getattr(self.__dict__["backbone"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _classifier(self, name: str) -> keras.layers.Dense | None:
        if self.num_classes is None:
            return None
        return dense(self.num_classes, name, self.dtype_policy)

    # === The backbone's settings ===
    @property
    def nchannels(self) -> tuple[int, ...]:
        return self.backbone.nchannels

    @property
    def feat_dim(self) -> int:
        return self.backbone.feat_dim

    @property
    def learn_region(self) -> bool:
        return self.backbone.learn_region

    @property
    def num_regions(self) -> int:
        return self.backbone.num_regions

    @property
    def input_size(self) -> tuple[int, int]:
        return self.backbone.input_size

    @property
    def local_size(self) -> tuple[int, int] | None:
        return self.backbone.local_size

    @property
    def align_corners(self) -> bool:
        return self.backbone.align_corners

    @property
    def reduction(self) -> int:
        return self.backbone.reduction

    @property
    def include_preprocessing(self) -> bool:
        """True when the model takes RGB pixels in `[0, 255]` and normalises them itself."""
        return self.backbone.include_preprocessing

    @property
    def embedding_dim(self) -> int:
        return self.backbone.embedding_dim

    @property
    def float32_heads(self) -> list[keras.layers.Layer]:
        """The backbone's `float32_heads` (the batch norms that end the two branches; see `HACNNBackbone`)."""
        return self.backbone.float32_heads

    @property
    def float_island_layers(self) -> list[keras.layers.Layer]:
        """The backbone's `float_island_layers` (hard attention and region samplers; see `HACNNBackbone`)."""
        return self.backbone.float_island_layers

    # === Computation ===
    def _check_input_shape(self, input_shape) -> None:
        if tuple(input_shape[1:]) != (*self.input_size, 3):
            raise ValueError(
                f"HACNN was configured for input (N, {self.input_size[0]}, {self.input_size[1]}, 3); "
                f"got input shape {tuple(input_shape)}"
            )

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        for classifier in (self.global_classifier, self.local_classifier):
            if classifier is not None:
                classifier.build((None, self.feat_dim))
        self.built = True

    def call(self, inputs, training=None):
        self._check_input_shape(inputs.shape)
        features = self.backbone(inputs, training=bool(training))
        outputs = {"embedding": features["embedding"], "global_features": features["global_features"]}
        if self.global_classifier is not None:
            outputs["global_logits"] = self.global_classifier(features["global_features"])
        if self.learn_region:
            outputs["local_features"] = features["local_features"]
            if self.local_classifier is not None:
                outputs["local_logits"] = self.local_classifier(features["local_features"])
        return {name: ops.cast(value, "float32") for name, value in outputs.items()}

    def attention(self, images) -> dict[str, list]:
        """The harmonious attention of each level at inference (§3.1), for inspection and figures.

        Returns `{"soft_maps": [(N, H_l, W_l, C_l)] * 3, "translations": [(N, T, 2)] * 3}`: the soft attention map
        that multiplies level `l`'s features, and the `(t_x, t_y)` translations of the `T` regions the local branch
        crops from level `l`'s input (normalised coordinates; each region spans `t_x +- 1`, `t_y +- 1 / T`).
        """
        images = ops.convert_to_tensor(images)
        self._check_input_shape(images.shape)
        features = self.backbone(images, training=False)
        return {"soft_maps": list(features["soft_maps"]), "translations": list(features["translations"])}

    def get_config(self):
        config = super().get_config()
        config.update(backbone=keras.saving.serialize_keras_object(self.backbone), num_classes=self.num_classes)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
