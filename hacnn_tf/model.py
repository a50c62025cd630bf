"""The Harmonious Attention CNN (Li, Zhu, Gong, CVPR 2018, Fig. 2) as a Keras 3 model."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import ops

from hacnn_tf.config import NUM_LEVELS, ModelConfig
from hacnn_tf.layers import (
    ConvBNReLU,
    HarmoniousAttention,
    ImageNormalization,
    InceptionA,
    InceptionB,
    RegionSampler,
)
from hacnn_tf.layers.conv import BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM, TORCH_KERNEL_INITIALIZER

STEM_FILTERS = 32
# Level-1 local crop size at the paper's 160 x 64 input (torchreid's `F.upsample(..., (24, 28))`).
PAPER_INPUT_SIZE = (160, 64)
PAPER_LOCAL_SIZE = (24, 28)


def l2_normalize(x, epsilon: float = 1e-12):
    """Rows of `x` divided by their L2 norm; an all-zero row stays zero instead of turning into NaN."""
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), epsilon))


def local_sizes(input_size: Sequence[int], local_size: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """The `(height, width)` of the local stream at the three levels.

    Level 1 defaults to the paper's 24 x 28 scaled with the input (rounded); each later level is what the shared
    Inception-B of the previous level outputs, `ceil(n / 2)`, so the cross-level sums line up.
    """
    if local_size is None:
        local_size = tuple(max(1, round(n * p / q)) for n, p, q in zip(input_size, PAPER_LOCAL_SIZE, PAPER_INPUT_SIZE))
    sizes = [tuple(int(n) for n in local_size)]
    for _ in range(NUM_LEVELS - 1):
        sizes.append(tuple(math.ceil(n / 2) for n in sizes[-1]))
    return sizes


def level_input_sizes(input_size: Sequence[int]) -> list[tuple[int, int]]:
    """`(H_in, W_in)` of the feature map each level's regions are cropped from: the stem's output `(H/2, W/2)` for
    level 1, then `(H/4, W/4)` and `(H/8, W/8)` (each level's Inception-B halves it; see `HACNN._global_levels`)."""
    height, width = (int(n) for n in input_size)
    return [(height // 2 ** (level + 1), width // 2 ** (level + 1)) for level in range(NUM_LEVELS)]


def _dense(units: int, name: str, dtype) -> keras.layers.Dense:
    return keras.layers.Dense(
        units, kernel_initializer=keras.initializers.get(TORCH_KERNEL_INITIALIZER), dtype=dtype, name=name
    )


def _batch_norm(name: str, dtype) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(
        epsilon=BATCH_NORM_EPSILON, momentum=BATCH_NORM_MOMENTUM, dtype=dtype, name=name
    )


@keras.saving.register_keras_serializable(package="hacnn_tf")
class HACNN(keras.Model):
    """Harmonious Attention CNN for person re-identification.

    A global branch of three Inception-A/B levels, each followed by harmonious attention (§3.1), and a local branch
    (§3.2) that crops `num_regions` horizontal stripes at every level with the hard attention's translations and runs
    them through one shared Inception-B per level; from level 2 on, the crop of the global features is added to the
    previous local features (the cross-attention interaction, §3.3). Built as torchreid's `HACNN`, whose checkpoints
    `hacnn_tf.from_torchreid` imports.

    Args:
        num_classes: identities of the training set (one classifier per branch); `None` for a model without
            classifiers (embedding or triplet-only training).
        nchannels: channels of the three levels.
        feat_dim: size of each branch's feature.
        learn_region: build the local branch; without it the model is the global branch alone and its embedding is
            the raw global feature, as in torchreid.
        num_regions: hard-attention regions `T`; stripe height is `1 / T` of the image.
        input_size: `(height, width)`; both must be multiples of 32 (five halvings, the last inside the spatial
            attention). The paper's is 160 x 64.
        local_size: level-1 local crop `(height, width)`; defaults to the paper's 24 x 28 scaled to `input_size`.
        align_corners: the regional sampler's `grid_sample` convention. PyTorch >= 1.3 (torchreid today) uses False;
            checkpoints trained with PyTorch <= 1.2 (torchreid's 2018-2019 model zoo) expect True.
        reduction: channel-attention reduction.
        include_preprocessing: when True the model takes RGB pixels in `[0, 255]` (uint8 or float) and normalises
            them itself; when False it takes ImageNet-normalised images, as torchreid does.

    Call:
        `model(images, training=...)` -> the same dict in training and inference (float32): `embedding`
        `(N, 2 * feat_dim)`, each branch L2-normalised, then concatenated (global first; the raw global feature
        without the local branch); `global_features`, `local_features` (raw post-ReLU features for metric losses);
        `global_logits`, `local_logits` (when `num_classes`). Inference is `training=False` (the default, also
        `model.predict`); the training losses are keyed by these names, so `model.evaluate` runs them too.

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
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.num_classes = None if num_classes is None else int(num_classes)
        self.nchannels = tuple(int(c) for c in nchannels)
        self.feat_dim = int(feat_dim)
        self.learn_region = bool(learn_region)
        self.num_regions = int(num_regions)
        self.input_size = tuple(int(n) for n in input_size)
        self.local_size = None if local_size is None else tuple(int(n) for n in local_size)
        self.align_corners = bool(align_corners)
        self.reduction = int(reduction)
        self.include_preprocessing = bool(include_preprocessing)
        self._validate()

        # === Layers ===
        policy = self.dtype_policy
        self.preprocessing = ImageNormalization(dtype=policy, name="preprocessing") if include_preprocessing else None
        self.stem = ConvBNReLU(STEM_FILTERS, 3, strides=2, padding=1, dtype=policy, name="stem")
        self.global_blocks = []
        self.attentions = []
        for level, channels in enumerate(self.nchannels, start=1):
            self.global_blocks.append(
                [
                    InceptionA(channels, dtype=policy, name=f"inception{level}a"),
                    InceptionB(channels, nonnegative_inputs=True, dtype=policy, name=f"inception{level}b"),
                ]
            )
            self.attentions.append(
                HarmoniousAttention(self.num_regions, self.reduction, dtype=policy, name=f"harmonious_attention{level}")
            )
        self.global_fc = _dense(self.feat_dim, "global_fc", policy)
        self.global_bn = _batch_norm("global_bn", policy)
        self.global_classifier = self._classifier("global_classifier")
        if self.learn_region:
            self.samplers = [
                RegionSampler(
                    size,
                    scale=(1.0 / self.num_regions, 1.0),
                    align_corners=self.align_corners,
                    dtype=policy,
                    name=f"region_sampler{level}",
                )
                for level, size in enumerate(local_sizes(self.input_size, self.local_size), start=1)
            ]
            self.local_blocks = [
                InceptionB(channels, nonnegative_inputs=True, dtype=policy, name=f"local_inception{level}")
                for level, channels in enumerate(self.nchannels, start=1)
            ]
            self.local_fc = _dense(self.feat_dim, "local_fc", policy)
            self.local_bn = _batch_norm("local_bn", policy)
            self.local_classifier = self._classifier("local_classifier")
        self.build((None, *self.input_size, 3))

    def _validate(self) -> None:
        """The architecture's constraints, as the training config states them (`ModelConfig.validate`)."""
        ModelConfig(
            input_size=self.input_size,
            learn_region=self.learn_region,
            num_regions=self.num_regions,
            feat_dim=self.feat_dim,
            nchannels=self.nchannels,
            align_corners=self.align_corners,
            reduction=self.reduction,
            local_size=self.local_size,
        ).validate()
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive integer or None; got {self.num_classes}")

    def _classifier(self, name: str) -> keras.layers.Dense | None:
        if self.num_classes is None:
            return None
        return _dense(self.num_classes, name, self.dtype_policy)

    def _check_input_shape(self, input_shape) -> None:
        if tuple(input_shape[1:]) != (*self.input_size, 3):
            raise ValueError(
                f"HACNN was configured for input (N, {self.input_size[0]}, {self.input_size[1]}, 3); "
                f"got input shape {tuple(input_shape)}"
            )

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        # One symbolic pass in training mode reaches every sublayer, classifiers included, and builds it.
        self._forward(keras.KerasTensor((1, *self.input_size, 3)), training=True)
        self.built = True

    def call(self, inputs, training=None):
        self._check_input_shape(inputs.shape)
        return self._forward(inputs, training=bool(training))

    def _global_levels(self, inputs, training: bool):
        """Yields, per level, `(level input, attended output, soft map, translations)` of the global branch."""
        x = self.preprocessing(inputs) if self.preprocessing is not None else inputs
        x = self.stem(x, training=training)
        for level in range(NUM_LEVELS):
            block_input = x
            for block in self.global_blocks[level]:
                x = block(x, training=training)
            soft_map, translations = self.attentions[level](x, training=training)
            x = x * soft_map
            yield block_input, x, soft_map, translations

    def attention(self, images) -> dict[str, list]:
        """The harmonious attention of each level at inference (§3.1), for inspection and figures.

        Returns `{"soft_maps": [(N, H_l, W_l, C_l)] * 3, "translations": [(N, T, 2)] * 3}`: the soft attention map
        that multiplies level `l`'s features, and the `(t_x, t_y)` translations of the `T` regions the local branch
        crops from level `l`'s input (normalised coordinates; each region spans `t_x +- 1`, `t_y +- 1 / T`).
        """
        images = ops.convert_to_tensor(images)
        self._check_input_shape(images.shape)
        levels = list(self._global_levels(images, training=False))
        return {"soft_maps": [level[2] for level in levels], "translations": [level[3] for level in levels]}

    def _forward(self, inputs, training: bool):
        local = None
        # x: each level's attended global features; the last level's go on to the global head below.
        for level, (block_input, x, _, translations) in enumerate(self._global_levels(inputs, training)):  # noqa: B007
            if self.learn_region:
                crops = self.samplers[level](block_input, translations)
                local = crops if local is None else crops + local
                local = self._local_stream(self.local_blocks[level], local, training)
        global_features = ops.relu(self.global_bn(self.global_fc(ops.mean(x, axis=(1, 2))), training=training))
        if self.learn_region:
            pooled = ops.mean(local, axis=(2, 3))
            pooled = ops.reshape(pooled, (-1, self.num_regions * pooled.shape[-1]))
            local_features = ops.relu(self.local_bn(self.local_fc(pooled), training=training))

        embedding = global_features
        if self.learn_region:
            embedding = ops.concatenate([l2_normalize(global_features), l2_normalize(local_features)], axis=-1)
        outputs = {"embedding": embedding, "global_features": global_features}
        if self.global_classifier is not None:
            outputs["global_logits"] = self.global_classifier(global_features)
        if self.learn_region:
            outputs["local_features"] = local_features
            if self.local_classifier is not None:
                outputs["local_logits"] = self.local_classifier(local_features)
        return {name: ops.cast(value, "float32") for name, value in outputs.items()}

    def _local_stream(self, block: InceptionB, regions, training: bool):
        """Runs the level's shared Inception-B on `(N, T, h, w, C)` region crops.

        In training each region is its own call, so batch norm normalises each region over the batch and updates the
        running statistics once per region, as torchreid's four calls do. At inference the statistics are fixed and
        the regions go through as one `N * T` batch: the same result, one call instead of `T`.
        """
        if training:
            return ops.stack([block(regions[:, r], training=True) for r in range(self.num_regions)], axis=1)
        _, regions_count, height, width, channels = regions.shape
        merged = block(ops.reshape(regions, (-1, height, width, channels)), training=False)
        return ops.reshape(merged, (-1, regions_count, *merged.shape[1:]))

    @property
    def embedding_dim(self) -> int:
        return self.feat_dim * (2 if self.learn_region else 1)

    @property
    def float32_heads(self) -> list[keras.layers.Layer]:
        """The layers that compute in float32 under a mixed-precision policy: the batch norms that end the two
        branches, so that the embedding's L2 normalisation runs in float32 too (in float16 its epsilon rounds to 0
        and an all-zero branch became NaN; in bfloat16 the norms are off by up to 0.3 %)."""
        return [self.global_bn] + ([self.local_bn] if self.learn_region else [])

    @property
    def float_island_layers(self) -> list[keras.layers.Layer]:
        """The layers an integer-quantised model keeps in float: each level's hard regional attention (the region
        translations) and region sampler (the tent-weight sampling matrices). A sampling position spans a whole axis,
        so 256 levels give steps of more than half a pixel and tent weights off by up to half their range. Empty
        without the local branch."""
        if not self.learn_region:
            return []
        return [attention.hard_attention for attention in self.attentions] + list(self.samplers)

    def get_config(self):
        config = super().get_config()
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
        )
        return config
