"""Import torchreid HA-CNN checkpoints (`torchreid/reid/models/hacnn.py`) into `hacnn_tf.HACNN`
(docs/parity.md#import-a-torchreid-checkpoint).

Every tensor of the checkpoint is mapped to exactly one Keras variable; a checkpoint with missing, unexpected or
mis-shaped tensors is refused with the full list. Layout conversions: conv kernels `(O, I, kh, kw)` ->
`(kh, kw, I, O)`, linear weights `(O, I)` -> `(I, O)`; batch norm `weight, bias, running_mean, running_var` ->
`gamma, beta, moving_mean, moving_variance`. No NCHW/NHWC reordering is needed elsewhere: the model has no flatten.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator, Mapping

import keras
import numpy as np

from hacnn_tf.layers import ConvBNReLU, HarmoniousAttention, InceptionA, InceptionB
from hacnn_tf.model import HACNN

_BATCH_NORM_KEYS = ("weight", "bias", "running_mean", "running_var")
_IGNORED_SUFFIX = ".num_batches_tracked"


def load_torchreid_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a torchreid checkpoint (`.pth`, `.pth.tar`, `.pt`) into `{name: float32 array}`.

    Accepts a bare state dict or torchreid's `{"state_dict": ..., "epoch": ...}`; strips `module.` prefixes left by
    `DataParallel`. Uses `torch.load(weights_only=True)`, which refuses to unpickle arbitrary objects.
    """
    try:
        import torch
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError("Reading torchreid checkpoints needs PyTorch: pip install 'hacnn-tf[torch]'") from error
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"torchreid checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: not a readable PyTorch checkpoint of tensors ({error})") from error
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{path}: expected a state dict or {{'state_dict': ...}}, got {type(checkpoint).__name__}")
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor")
        name = name.removeprefix("module.")
        if not name.endswith(_IGNORED_SUFFIX):
            arrays[name] = value.detach().cpu().numpy()
    return arrays


def conv_bn_variables(layer: ConvBNReLU, prefix: str):
    yield f"{prefix}.conv.weight", layer.conv.kernel, (2, 3, 1, 0)
    yield f"{prefix}.conv.bias", layer.conv.bias, None
    yield from batch_norm_variables(layer.bn, f"{prefix}.bn")


def batch_norm_variables(layer: keras.layers.BatchNormalization, prefix: str):
    variables = (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance)
    for key, variable in zip(_BATCH_NORM_KEYS, variables):
        yield f"{prefix}.{key}", variable, None


def dense_variables(layer: keras.layers.Dense, prefix: str):
    yield f"{prefix}.weight", layer.kernel, (1, 0)
    yield f"{prefix}.bias", layer.bias, None


def inception_a_variables(block: InceptionA, prefix: str):
    for index, stream in enumerate((block.stream1, block.stream2, block.stream3), start=1):
        for position, layer in enumerate(stream):
            yield from conv_bn_variables(layer, f"{prefix}.stream{index}.{position}")
    yield from conv_bn_variables(block.pool_projection, f"{prefix}.stream4.1")


def inception_b_variables(block: InceptionB, prefix: str):
    for index, stream in enumerate((block.stream1, block.stream2), start=1):
        for position, layer in enumerate(stream):
            yield from conv_bn_variables(layer, f"{prefix}.stream{index}.{position}")
    yield from conv_bn_variables(block.pool_projection, f"{prefix}.stream3.1")


def harmonious_attention_variables(layer: HarmoniousAttention, prefix: str):
    soft = layer.soft_attention
    yield from conv_bn_variables(soft.spatial_attention.downsample, f"{prefix}.soft_attn.spatial_attn.conv1")
    yield from conv_bn_variables(soft.spatial_attention.scale, f"{prefix}.soft_attn.spatial_attn.conv2")
    yield from conv_bn_variables(soft.channel_attention.squeeze, f"{prefix}.soft_attn.channel_attn.conv1")
    yield from conv_bn_variables(soft.channel_attention.excite, f"{prefix}.soft_attn.channel_attn.conv2")
    yield from conv_bn_variables(soft.fuse, f"{prefix}.soft_attn.conv")
    yield from dense_variables(layer.hard_attention.fc, f"{prefix}.hard_attn.fc")


def torchreid_variable_map(model: HACNN) -> Iterator[tuple[str, keras.Variable, tuple[int, ...] | None]]:
    """Yields `(torchreid key, Keras variable, axis permutation or None)` for every tensor of the model."""
    yield from conv_bn_variables(model.stem, "conv")
    for level, ((block_a, block_b), attention) in enumerate(zip(model.global_blocks, model.attentions), start=1):
        yield from inception_a_variables(block_a, f"inception{level}.0")
        yield from inception_b_variables(block_b, f"inception{level}.1")
        yield from harmonious_attention_variables(attention, f"ha{level}")
    yield from dense_variables(model.global_fc, "fc_global.0")
    yield from batch_norm_variables(model.global_bn, "fc_global.1")
    if model.global_classifier is not None:
        yield from dense_variables(model.global_classifier, "classifier_global")
    if model.learn_region:
        for level, block in enumerate(model.local_blocks, start=1):
            yield from inception_b_variables(block, f"local_conv{level}")
        yield from dense_variables(model.local_fc, "fc_local.0")
        yield from batch_norm_variables(model.local_bn, "fc_local.1")
        if model.local_classifier is not None:
            yield from dense_variables(model.local_classifier, "classifier_local")


def load_torchreid_weights(model: HACNN, state_dict: Mapping[str, np.ndarray]) -> None:
    """Assigns a torchreid state dict to `model`, or raises `ValueError` listing every mismatch (nothing assigned)."""
    assign_torchreid_tensors(torchreid_variable_map(model), state_dict, "HACNN")


def assign_torchreid_tensors(variable_map, state_dict: Mapping[str, np.ndarray], what: str) -> None:
    """Assigns the tensors named by `variable_map` (`(key, variable, permutation)` triples) from `state_dict`.

    Every key must be present with the right shape and every tensor of `state_dict` must be used; otherwise a
    `ValueError` lists all missing, unexpected and mis-shaped keys and nothing is assigned.
    """
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items() if not k.endswith(_IGNORED_SUFFIX)}
    assignments, missing, mismatched = [], [], []
    expected = set()
    for key, variable, permutation in variable_map:
        expected.add(key)
        if key not in state_dict:
            missing.append(key)
            continue
        value = np.asarray(state_dict[key], dtype="float32")
        if permutation is not None and value.ndim == len(permutation):
            value = value.transpose(permutation)
        if tuple(value.shape) != tuple(variable.shape):
            mismatched.append(
                f"{key}: checkpoint {tuple(state_dict[key].shape)} -> {tuple(value.shape)}, "
                f"model expects {tuple(variable.shape)}"
            )
            continue
        assignments.append((variable, value))
    unexpected = sorted(set(state_dict) - expected)
    if missing or unexpected or mismatched:
        problems = []
        for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if items:
                problems.append(f"{title} ({len(items)}):\n  " + "\n  ".join(items))
        raise ValueError(f"The torchreid state dict does not fit this {what}:\n" + "\n".join(problems))
    for variable, value in assignments:
        variable.assign(value)


def infer_config(state_dict: Mapping[str, np.ndarray]) -> dict:
    """The `HACNN` arguments a torchreid state dict was built with (classes, channels, feature size, regions)."""
    try:
        nchannels = tuple(int(state_dict[f"ha{level}.hard_attn.fc.weight"].shape[1]) for level in (1, 2, 3))
        num_regions = int(state_dict["ha1.hard_attn.fc.weight"].shape[0]) // 2
        feat_dim = int(state_dict["fc_global.0.weight"].shape[0])
    except KeyError as error:
        raise ValueError(f"Not a torchreid HACNN state dict: key {error} is missing") from error
    classifier = state_dict.get("classifier_global.weight")
    return {
        "num_classes": None if classifier is None else int(classifier.shape[0]),
        "nchannels": nchannels,
        "feat_dim": feat_dim,
        "num_regions": num_regions,
        "learn_region": "fc_local.0.weight" in state_dict,
    }


def from_torchreid(
    path: str | os.PathLike,
    align_corners: bool = False,
    num_classes: int | None = None,
    **model_kwargs,
) -> HACNN:
    """Builds a `HACNN` holding the weights of a torchreid HA-CNN checkpoint.

    Args:
        path: the checkpoint (`.pth`, `.pth.tar`, `.pt`; bare state dict or torchreid's checkpoint dict).
        align_corners: the sampler convention the checkpoint was trained with: False for PyTorch >= 1.3 (what
            torchreid runs today), True for checkpoints trained with PyTorch <= 1.2 (torchreid's 2018-2019 zoo).
        num_classes: expected identities; `None` takes them from the checkpoint's classifiers. A value that
            disagrees with the checkpoint is an error.
        **model_kwargs: further `HACNN` arguments (`input_size`, `include_preprocessing`, ...).

    Returns:
        The model; in inference mode it returns torchreid's eval-mode embedding for the same images (NHWC).
    """
    state_dict = load_torchreid_state_dict(path)
    config = infer_config(state_dict)
    if num_classes is not None and num_classes != config["num_classes"]:
        raise ValueError(
            f"{path}: num_classes={num_classes} was asked for, but the checkpoint's classifiers have "
            f"{config['num_classes']} classes"
        )
    model = HACNN(**{**config, **model_kwargs, "align_corners": align_corners})
    load_torchreid_weights(model, state_dict)
    return model
