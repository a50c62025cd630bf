"""tf.data input pipelines: decode, resize, augment as torchreid trains HA-CNN, normalise, P x K sampling.

Images are decoded, resized and normalised by `HACNNPreprocessor`, as the exported signatures and the tracker do."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from hacnn_tf.data.hacnn_preprocessor import HACNNPreprocessor, resize_pixels
from hacnn_tf.data.image_decoding import decode_rgb

AUTOTUNE = tf.data.AUTOTUNE
# torchreid's Random2DTranslation enlarges by 1/8 before a random crop back to the input size.
TRANSLATION_ENLARGEMENT = 1.125


def random_translate(image, input_size: Sequence[int], seed, probability: float = 0.5):
    """torchreid's `Random2DTranslation`: with `probability`, enlarge by 1/8 and crop a random `input_size` window."""
    height, width = input_size
    big = (int(round(height * TRANSLATION_ENLARGEMENT)), int(round(width * TRANSLATION_ENLARGEMENT)))
    seeds = tf.random.experimental.stateless_split(seed, 2)

    def translated():
        enlarged = resize_pixels(image, big)
        return tf.image.stateless_random_crop(enlarged, (height, width, 3), seed=seeds[1])

    apply = tf.random.stateless_uniform([], seed=seeds[0]) < probability
    return tf.cond(apply, translated, lambda: image)


def random_erase(image, seed, probability: float = 0.5, area=(0.02, 0.4), min_aspect: float = 0.3):
    """Random erasing (Zhong et al. 2020, torchreid's `RandomErasing`) on a normalised image: the box becomes 0, the
    normalised ImageNet mean."""
    height, width = image.shape[0], image.shape[1]
    draws = tf.random.stateless_uniform([5], seed=seed)
    target_area = (area[0] + (area[1] - area[0]) * draws[0]) * height * width
    aspect = tf.exp(tf.math.log(min_aspect) + (tf.math.log(1.0 / min_aspect) - tf.math.log(min_aspect)) * draws[1])
    box_h = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(target_area * aspect)), tf.int32), 1, height)
    box_w = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(target_area / aspect)), tf.int32), 1, width)
    top = tf.cast(draws[2] * tf.cast(height - box_h + 1, tf.float32), tf.int32)
    left = tf.cast(draws[3] * tf.cast(width - box_w + 1, tf.float32), tf.int32)
    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    inside = (rows >= top) & (rows < top + box_h) & (cols >= left) & (cols < left + box_w) & (draws[4] < probability)
    return tf.where(inside[:, :, None], tf.zeros_like(image), image)


def pk_indices(pids: np.ndarray, num_identities: int, num_instances: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch of identity-balanced indices: batches of `num_identities` x `num_instances` images.

    As torchreid's `RandomIdentitySampler`: each identity's images are shuffled and cut into groups of K (drawn with
    replacement when it has fewer than K), and every batch takes one group from each of P identities.
    """
    groups: dict[int, list[np.ndarray]] = {}
    for pid in np.unique(pids):
        members = np.flatnonzero(pids == pid)
        if len(members) < num_instances:
            members = rng.choice(members, num_instances, replace=True)
        members = rng.permutation(members)
        usable = len(members) // num_instances * num_instances
        groups[int(pid)] = list(members[:usable].reshape(-1, num_instances))
    if len(groups) < num_identities:
        raise ValueError(f"P x K sampling needs at least P={num_identities} identities; the data has {len(groups)}")
    batches = []
    while sum(bool(g) for g in groups.values()) >= num_identities:
        available = [pid for pid, g in groups.items() if g]
        chosen = rng.choice(available, num_identities, replace=False)
        batches.append(np.concatenate([groups[int(pid)].pop() for pid in chosen]))
    return np.concatenate(batches)


def _read(path):
    return tf.io.read_file(path)


def epoch_plan(
    pids: np.ndarray, epochs: int, batch_size: int, num_instances: int | None = None, seed: int = 0
) -> np.ndarray:
    """`(epochs, steps * batch_size)` image indices: the order every epoch of training reads the table in.

    Epoch `e` depends only on `(seed, e)`, so a run resumed at epoch `e` reads exactly what an uninterrupted run
    reads. Uniform shuffling drops the last partial batch; P x K epochs are cut (or wrapped) to the first epoch's
    number of batches, so every epoch has the same number of steps.
    """
    plans = []
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        if num_instances:
            order = pk_indices(pids, batch_size // num_instances, num_instances, rng)
        else:
            order = rng.permutation(len(pids))
        plans.append(order)
    length = len(plans[0]) // batch_size * batch_size
    if length == 0:
        raise ValueError(f"The training table has {len(pids)} images: fewer than one batch of {batch_size}")
    return np.stack([np.resize(order, length) for order in plans])


def make_train_dataset(
    table: pd.DataFrame,
    input_size: Sequence[int],
    batch_size: int,
    target_names: Sequence[str],
    seed: int = 0,
    flip: bool = True,
    translate: bool = True,
    random_erasing: bool = False,
    num_instances: int | None = None,
    epochs: int = 1,
    initial_epoch: int = 0,
    num_shards: int = 1,
    shard_index: int = 0,
    split: int = 1,
) -> tf.data.Dataset:
    """Training batches `(images, {target_name: pid})` for `epochs - initial_epoch` epochs, decoded, augmented and
    ImageNet-normalised; `len(dataset)` is the number of steps (times `split`).

    Args:
        table: rows with `path` and `pid` (training labels 0..N-1).
        input_size: `(height, width)` of the model.
        batch_size: images per batch; with `num_instances` K, a multiple of K (P = batch_size / K identities).
        target_names: the model outputs that take the identity label (keys of `compile`'s loss dictionary).
        seed: shuffling and augmentation seed: the same seed gives the same batches, epoch by epoch.
        flip, translate, random_erasing: torchreid's `random_flip`, `random_crop` (Random2DTranslation) and
            `random_erase`.
        num_instances: K for identity-balanced P x K batches (triplet loss); None shuffles uniformly.
        epochs, initial_epoch: the epochs to produce; a resumed run starts at `initial_epoch` and sees the same
            images and augmentations as an uninterrupted one.
        num_shards, shard_index, split: distributed input (`hacnn_tf.distribute`). Each global batch of `batch_size`
            is cut into `num_shards` contiguous, equal parts and this dataset reads only part `shard_index` of each
            (the share of one worker), as `split` consecutive batches of `batch_size / (num_shards * split)` images
            (one per local replica). The images and augmentations are those of the single-process batches: the
            union over the shards is the global batch. A P x K batch is `P` runs of `K` images of one identity, so
            parts that are multiples of K keep every identity's K images together.
    """
    _check_batching(batch_size, num_instances, num_shards, shard_index, split)
    paths = table["path"].astype(str).to_numpy()
    pids = table["pid"].to_numpy().astype("int32")
    plan = epoch_plan(pids, epochs, batch_size, num_instances, seed)
    positions = np.arange(plan.size, dtype="int64").reshape(plan.shape)
    plan, positions = plan[initial_epoch:], positions[initial_epoch:]
    if num_shards > 1:
        # Augmentation seeds stay those of the global positions, so every image is what a single process reads.
        plan, positions = (_shard_of(a, batch_size, num_shards, shard_index) for a in (plan, positions))
    indices = tf.data.Dataset.from_tensor_slices((plan.reshape(-1), positions.reshape(-1)))
    paths_t, pids_t = tf.constant(paths), tf.constant(pids)
    preprocessor = HACNNPreprocessor(input_size)

    def load(index, position):
        seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), position]), 3)
        image = preprocessor.decode_and_resize(_read(tf.gather(paths_t, index)))
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=seeds[0])
        if translate:
            image = random_translate(image, input_size, seeds[1])
        image = preprocessor.normalize(image)
        if random_erasing:
            image = random_erase(image, seeds[2])
        label = tf.gather(pids_t, index)
        return image, {name: label for name in target_names}

    dataset = indices.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size // (num_shards * split), drop_remainder=True).prefetch(AUTOTUNE)


def _check_batching(batch_size: int, num_instances: int | None, num_shards: int, shard_index: int, split: int) -> None:
    """Raises ValueError unless the batches can be cut as `make_train_dataset` cuts them."""
    if num_instances and batch_size % num_instances:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of num_instances ({num_instances})")
    if not 0 <= shard_index < num_shards or split < 1:
        raise ValueError(
            f"Need 0 <= shard_index < num_shards and split >= 1; got shard_index={shard_index}, "
            f"num_shards={num_shards}, split={split}"
        )
    if batch_size % (num_shards * split):
        raise ValueError(
            f"batch_size ({batch_size}) must be a multiple of num_shards x split "
            f"({num_shards} x {split}): the global batch is divided evenly among the replicas"
        )


def _shard_of(per_epoch: np.ndarray, batch_size: int, num_shards: int, shard_index: int) -> np.ndarray:
    """Part `shard_index` of `num_shards` contiguous, equal parts of every global batch of `per_epoch` (an epoch
    per row): `(batches, batch_size / num_shards)`."""
    share = batch_size // num_shards
    return per_epoch.reshape(-1, batch_size)[:, shard_index * share : (shard_index + 1) * share]


def make_eval_dataset(
    table: pd.DataFrame, input_size: Sequence[int], batch_size: int = 64, normalize: bool = True
) -> tf.data.Dataset:
    """Batches of the table's images in row order (no augmentation), for feature extraction: ImageNet-normalised, or
    with `normalize=False` the decoded pixels in 0..255 (what the exported models take)."""
    paths = tf.data.Dataset.from_tensor_slices(table["path"].astype(str).to_numpy())
    preprocessor = HACNNPreprocessor(input_size)

    def load(path):
        pixels = preprocessor.decode_and_resize(_read(path))
        return preprocessor.normalize(pixels) if normalize else pixels

    return paths.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).batch(batch_size).prefetch(AUTOTUNE)


def load_pixels(table: pd.DataFrame, input_size: Sequence[int], batch_size: int = 64) -> np.ndarray:
    """`(N, H, W, 3)` float32 pixels (0..255) of the table's images, decoded and resized as everywhere else."""
    batches = [batch.numpy() for batch in make_eval_dataset(table, input_size, batch_size, normalize=False)]
    return np.concatenate(batches) if batches else np.zeros((0, *input_size, 3), np.float32)


def op_error_text(error: tf.errors.OpError) -> str:
    """An op error's message without TensorFlow's function and op annotations."""
    text = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]", "", error.message).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else text}"


def undecodable_images(paths: Sequence[str]) -> dict[int, str]:
    """`{index: reason}` of the `paths` that `decode_rgb` (what training, evaluation and serving decode with) cannot
    read: missing files, truncated or corrupt data, formats or BMP variants TensorFlow does not decode.

    All files are read and decoded in a parallel `tf.data` pass that drops the failing ones; only those are decoded
    again, one by one, for their error message.
    """
    dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(paths), dtype=np.int64), np.asarray(paths, str)))
    decoded = dataset.map(
        lambda index, path: (index, tf.size(decode_rgb(_read(path)))), num_parallel_calls=AUTOTUNE, deterministic=False
    )
    batches = decoded.ignore_errors().batch(1024).as_numpy_iterator()  # batched: no Python step per file
    readable = {int(index) for indices, _ in batches for index in indices}
    failed = [index for index in range(len(paths)) if index not in readable]
    decode = tf.function(lambda path: tf.size(decode_rgb(_read(path))), autograph=False)
    reasons = {}
    for index in failed:
        try:
            decode(tf.constant(paths[index]))
        except tf.errors.OpError as error:
            reasons[index] = op_error_text(error)
    return reasons
