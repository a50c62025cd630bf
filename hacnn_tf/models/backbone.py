"""The HA-CNN backbone (Li, Zhu, Gong, CVPR 2018, Fig. 2): images -> embedding, branch features and attention."""

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
    LocalInception,
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
    level 1, then `(H/4, W/4)` and `(H/8, W/8)` (each level's Inception-B halves it)."""
    height, width = (int(n) for n in input_size)
    return [(height // 2 ** (level + 1), width // 2 ** (level + 1)) for level in range(NUM_LEVELS)]


def dense(units: int, name: str, dtype) -> keras.layers.Dense:
    """A fully connected layer initialised as torchreid's `nn.Linear`."""
    return keras.layers.Dense(
        units, kernel_initializer=keras.initializers.get(TORCH_KERNEL_INITIALIZER), dtype=dtype, name=name
    )


def _batch_norm(name: str, dtype) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(
        epsilon=BATCH_NORM_EPSILON, momentum=BATCH_NORM_MOMENTUM, dtype=dtype, name=name
    )


@keras.saving.register_keras_serializable(package="hacnn_tf")
class HACNNBackbone(keras.Model):
    """The HA-CNN network without identity classifiers, as a functional Keras model.

    A global branch of three Inception-A/B levels, each followed by harmonious attention (§3.1), and a local branch
    (§3.2) that crops `num_regions` horizontal stripes at every level with the hard attention's translations
    (`RegionSampler`, a spatial transformer) and runs them through one shared Inception-B per level
    (`LocalInception`); from level 2 on, the crop of the global features is added to the previous local features
    (the cross-attention interaction, §3.3). Each branch ends in `Dense -> BatchNorm -> ReLU`, as torchreid's
    `HACNN`.

    Args:
        nchannels: channels of the three levels.
        feat_dim: size of each branch's feature.
        learn_region: build the local branch; without it the embedding is the raw global feature, as in torchreid.
        num_regions: hard-attention regions `T`; stripe height is `1 / T` of the image.
        input_size: `(height, width)`; both must be multiples of 32 (five halvings, the last inside the spatial
            attention). The paper's is 160 x 64.
        local_size: level-1 local crop `(height, width)`; defaults to the paper's 24 x 28 scaled to `input_size`.
        align_corners: the regional sampler's `grid_sample` convention. PyTorch >= 1.3 (torchreid today) uses False;
            checkpoints trained with PyTorch <= 1.2 (torchreid's 2018-2019 model zoo) expect True.
        reduction: channel-attention reduction.
        include_preprocessing: when True the model takes RGB pixels in `[0, 255]` (uint8 or float) and normalises
            them itself; when False it takes ImageNet-normalised images, as torchreid does.
        head_dtype: dtype policy of the batch norms that end the two branches (`float32_heads`); `None` is the
            model's. Under mixed precision `"float32"` keeps the embedding's L2 normalisation in float32.

    Call: `(N, H, W, 3)` images -> a dict (the features float32): `embedding` `(N, 2 * feat_dim)` (each branch
    L2-normalised, then concatenated, global first; the raw global feature without the local branch),
    `global_features`, `local_features` (with the local branch; raw post-ReLU features), `soft_maps` (three
    `(N, H_l, W_l, C_l)` soft attention maps) and `translations` (three `(N, T, 2)` region translations).
    """

    def __init__(
        self,
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
        dtype=None,
        **kwargs,
    ):
        nchannels = tuple(int(c) for c in nchannels)
        input_size = tuple(int(n) for n in input_size)
        local_size = None if local_size is None else tuple(int(n) for n in local_size)
        ModelConfig(
            input_size=input_size,
            learn_region=bool(learn_region),
            num_regions=int(num_regions),
            feat_dim=int(feat_dim),
            nchannels=nchannels,
            align_corners=bool(align_corners),
            reduction=int(reduction),
            local_size=local_size,
        ).validate()
        policy = keras.dtype_policies.get(dtype) if dtype is not None else keras.config.dtype_policy()
        head_policy = policy if head_dtype is None else keras.dtype_policies.get(head_dtype)

        # === Layers ===
        preprocessing = ImageNormalization(dtype=policy, name="preprocessing") if include_preprocessing else None
        stem = ConvBNReLU(STEM_FILTERS, 3, strides=2, padding=1, dtype=policy, name="stem")
        global_blocks = [
            [
                InceptionA(channels, dtype=policy, name=f"inception{level}a"),
                InceptionB(channels, nonnegative_inputs=True, dtype=policy, name=f"inception{level}b"),
            ]
            for level, channels in enumerate(nchannels, start=1)
        ]
        attentions = [
            HarmoniousAttention(int(num_regions), int(reduction), dtype=policy, name=f"harmonious_attention{level}")
            for level in range(1, NUM_LEVELS + 1)
        ]
        global_fc = dense(int(feat_dim), "global_fc", policy)
        global_bn = _batch_norm("global_bn", head_policy)
        samplers, local_streams, local_fc, local_bn = [], [], None, None
        if learn_region:
            samplers = [
                RegionSampler(
                    size,
                    scale=(1.0 / int(num_regions), 1.0),
                    align_corners=bool(align_corners),
                    dtype=policy,
                    name=f"region_sampler{level}",
                )
                for level, size in enumerate(local_sizes(input_size, local_size), start=1)
            ]
            local_streams = [
                LocalInception(channels, dtype=policy, name=f"local_inception{level}")
                for level, channels in enumerate(nchannels, start=1)
            ]
            local_fc = dense(int(feat_dim), "local_fc", policy)
            local_bn = _batch_norm("local_bn", head_policy)

        # === Functional model ===
        images = keras.Input((*input_size, 3), name="images")
        x = preprocessing(images) if preprocessing is not None else images
        x = stem(x)
        local = None
        soft_maps, translations = [], []
        for level in range(NUM_LEVELS):
            block_input = x
            for block in global_blocks[level]:
                x = block(x)
            soft_map, level_translations = attentions[level](x)
            x = x * soft_map
            soft_maps.append(soft_map)
            translations.append(level_translations)
            if learn_region:
                crops = samplers[level](block_input, level_translations)
                local = crops if local is None else crops + local
                local = local_streams[level](local)
        global_features = ops.relu(global_bn(global_fc(ops.mean(x, axis=(1, 2)))))
        outputs = {"embedding": global_features, "global_features": global_features}
        if learn_region:
            pooled = ops.mean(local, axis=(2, 3))
            pooled = ops.reshape(pooled, (-1, int(num_regions) * pooled.shape[-1]))
            local_features = ops.relu(local_bn(local_fc(pooled)))
            outputs["embedding"] = ops.concatenate(
                [l2_normalize(global_features), l2_normalize(local_features)], axis=-1
            )
            outputs["local_features"] = local_features
        outputs = {name: ops.cast(value, "float32") for name, value in outputs.items()}
        outputs["soft_maps"] = soft_maps
        outputs["translations"] = translations
        super().__init__(inputs=images, outputs=outputs, dtype=policy, **kwargs)

        # === Config ===
        self.nchannels = nchannels
        self.feat_dim = int(feat_dim)
        self.learn_region = bool(learn_region)
        self.num_regions = int(num_regions)
        self.input_size = input_size
        self.local_size = local_size
        self.align_corners = bool(align_corners)
        self.reduction = int(reduction)
        self.include_preprocessing = bool(include_preprocessing)
        self.head_dtype = None if head_dtype is None else head_policy.name

        # === Layers, by role ===
        self.preprocessing = preprocessing
        self.stem = stem
        self.global_blocks = global_blocks
        self.attentions = attentions
        self.global_fc = global_fc
        self.global_bn = global_bn
        self.samplers = samplers
        self.local_streams = local_streams
        self.local_fc = local_fc
        self.local_bn = local_bn

    @property
    def local_blocks(self) -> list[InceptionB]:
        """The shared Inception-B of each level of the local stream (torchreid's `local_conv1..3`)."""
        return [stream.block for stream in self.local_streams]

    @property
    def embedding_dim(self) -> int:
        return self.feat_dim * (2 if self.learn_region else 1)

    @property
    def float32_heads(self) -> list[keras.layers.Layer]:
        """The layers that compute in float32 under a mixed-precision policy (`head_dtype="float32"`): the batch
        norms that end the two branches, so that the embedding's L2 normalisation runs in float32 too (in float16 its
        epsilon rounds to 0 and an all-zero branch became NaN; in bfloat16 the norms are off by up to 0.3 %)."""
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
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "nchannels": self.nchannels,
            "feat_dim": self.feat_dim,
            "learn_region": self.learn_region,
            "num_regions": self.num_regions,
            "input_size": self.input_size,
            "local_size": self.local_size,
            "align_corners": self.align_corners,
            "reduction": self.reduction,
            "include_preprocessing": self.include_preprocessing,
            "head_dtype": self.head_dtype,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
