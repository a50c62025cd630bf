"""tf.data input pipelines: decode, resize, augment as torchreid trains HA-CNN, normalise, P x K sampling."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from hacnn_tf.data.normalization import normalize_images

AUTOTUNE = tf.data.AUTOTUNE
# torchreid's Random2DTranslation enlarges by 1/8 before a random crop back to the input size.
TRANSLATION_ENLARGEMENT = 1.125


# The default pixel limit of `decode_and_resize(max_pixels=...)`, what the exported serving signature decodes at
# most: a 4096 x 4096 image is 50 MB as uint8 RGB and 200 MB as float32 before the resize.
DEFAULT_MAX_PIXELS = 4096 * 4096
_HEADER_LENGTH = 64  # enough for every size field read below and the BMP header fields
_JPEG, _PNG, _GIF, _BMP = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM"
# BMP bits per pixel and compressions TensorFlow's decoder reads (BI_RGB, BI_BITFIELDS), its smallest header.
_BMP_BITS, _BMP_COMPRESSIONS, _BMP_MIN_HEADER = (8, 24, 32), (0, 3), 40


def _header(image_bytes):
    """The first `_HEADER_LENGTH` bytes as an int64 vector, zero-padded when the file is shorter."""
    head = tf.strings.substr(image_bytes, 0, _HEADER_LENGTH)
    head = tf.strings.substr(tf.strings.join([head, b"\0" * _HEADER_LENGTH]), 0, _HEADER_LENGTH)
    return tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)


def _number(header, start: int, length: int, big_endian: bool = False):
    """The unsigned integer in `header[start:start + length]` (little-endian unless `big_endian`)."""
    weights = 256 ** np.arange(length, dtype=np.int64)
    return tf.reduce_sum(header[start:start + length] * (weights[::-1] if big_endian else weights))


def _starts_with(header, magic: bytes, at: int = 0):
    return tf.reduce_all(tf.equal(header[at:at + len(magic)], list(magic)))


def header_size(image_bytes, header=None):
    """`(height, width)` int64 of an encoded image, read from its header without decoding it; `(-1, -1)` for a format
    whose size is not read here (JPEG XL, or not an image).

    JPEG: the frame header (`tf.image.extract_jpeg_shape`); PNG: IHDR (bytes 16-24, big-endian); BMP: bytes 18-26
    (signed little-endian, a negative height is a top-down file); GIF: the logical screen (bytes 6-10), the canvas the
    decoder allocates (a frame may be larger: see `_gif_frame_pixels`); WebP: the `VP8 `, `VP8L` or `VP8X` chunk
    header. `header`: the file's first bytes as `_header` returns them, when already at hand.
    """
    header = _header(image_bytes) if header is None else header
    signed = lambda value: tf.abs(tf.where(value >= 2**31, value - 2**32, value))
    webp = _starts_with(header, b"RIFF") & _starts_with(header, b"WEBP", 8)
    lossless = _number(header, 21, 4)
    sizes = [
        (_starts_with(header, _PNG), _number(header, 20, 4, True), _number(header, 16, 4, True)),
        (_starts_with(header, _BMP), signed(_number(header, 22, 4)), signed(_number(header, 18, 4))),
        (_starts_with(header, _GIF), _number(header, 8, 2), _number(header, 6, 2)),
        (webp & _starts_with(header, b"VP8 ", 12), _number(header, 28, 2) % 2**14, _number(header, 26, 2) % 2**14),
        (webp & _starts_with(header, b"VP8L", 12), lossless // 2**14 % 2**14 + 1, lossless % 2**14 + 1),
        (webp & _starts_with(header, b"VP8X", 12), _number(header, 27, 3) + 1, _number(header, 24, 3) + 1),
    ]
    size = tf.constant([-1, -1], tf.int64)
    for matches, height, width in reversed(sizes):
        size = tf.where(matches, tf.stack([height, width]), size)
    return tf.cond(_starts_with(header, _JPEG),
                   lambda: tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64), lambda: size)


def _gif_frame_pixels(image_bytes):
    """Width x height summed over a GIF's image descriptors, found by walking its blocks (extensions and image data
    are chains of sub-blocks, each led by its length). giflib decodes every frame at the size its descriptor gives,
    which may exceed the logical screen."""
    data = tf.cast(tf.io.decode_raw(image_bytes, tf.uint8), tf.int64)
    length = tf.size(data, out_type=tf.int64)
    zero = tf.constant(0, tf.int64)
    # past the end: the last byte (the decoder refuses a truncated file)
    at = lambda index: tf.gather(data, tf.minimum(tf.cast(index, tf.int64), length - 1))
    table = lambda flags: tf.where(flags >= 128, 3 * 2 ** (flags % 8 + 1), zero)  # colour table bytes

    def step(position, in_chain, total):
        byte = at(position)
        image, extension = tf.equal(byte, 0x2C), tf.equal(byte, 0x21)
        # image descriptor: 0x2C, left, top, width, height (16-bit each), flags, local colour table, LZW code size
        pixels = (at(position + 5) + 256 * at(position + 6)) * (at(position + 7) + 256 * at(position + 8))
        block_end = tf.where(image, position + 11 + table(at(position + 9)),
                             tf.where(extension, position + 2, length))  # the trailer (or junk) ends the walk
        return (tf.where(in_chain, position + byte + 1, block_end), tf.where(in_chain, byte > 0, True),
                total + tf.where(~in_chain & image, pixels, zero))

    start = 13 + table(at(10))  # header, logical screen descriptor, global colour table
    _, _, total = tf.while_loop(lambda position, in_chain, total: position < length, step,
                                (start, tf.constant(False), zero))
    return total


def _pixel_limit_checks(image_bytes, header, max_pixels: int) -> list:
    """Assertions that the image's header names a size of at most `max_pixels` pixels (for a GIF, also all its
    frames together)."""
    size = header_size(image_bytes, header)
    known = tf.debugging.Assert(size[0] >= 0, [
        "Unknown image file format: with a pixel limit one of JPEG, PNG, GIF, BMP or WebP is required, whose size is "
        "read before decoding"])
    with tf.control_dependencies([known]):
        small = tf.debugging.Assert(size[0] * size[1] <= max_pixels, [
            f"Image too large: more than the limit of {max_pixels} pixels, refused before decoding; height x width:",
            size[0], size[1]])
    frames = tf.cond(_starts_with(header, _GIF), lambda: _gif_frame_pixels(image_bytes),
                     lambda: tf.constant(0, tf.int64))
    with tf.control_dependencies([small]):
        small_frames = tf.debugging.Assert(frames <= max_pixels, [
            f"GIF too large: its frames hold more than the limit of {max_pixels} pixels, refused before decoding; "
            "pixels of all frames:", frames])
    return [known, small, small_frames]


def _decode_bmp(image_bytes, header):
    """A BMP as RGB: refused clearly when TensorFlow's decoder cannot read it; an 8-bit BMP's palette indices (which
    `tf.io.decode_bmp` returns as one gray channel) looked up in its palette."""
    bits, compression, header_bytes = _number(header, 28, 2), _number(header, 30, 4), _number(header, 14, 4)
    readable = (tf.reduce_any(tf.equal(bits, _BMP_BITS)) & tf.reduce_any(tf.equal(compression, _BMP_COMPRESSIONS))
                & (header_bytes >= _BMP_MIN_HEADER))
    check = tf.debugging.Assert(readable, [
        f"BMP not decodable: TensorFlow reads uncompressed BMPs of {', '.join(map(str, _BMP_BITS))} bits per pixel "
        f"with a header of at least {_BMP_MIN_HEADER} bytes; bits per pixel, compression, header bytes:",
        bits, compression, header_bytes])

    def palette():
        indices = tf.cast(tf.io.decode_bmp(image_bytes, channels=0)[:, :, 0], tf.int32)
        start = tf.minimum(tf.cast(14 + header_bytes, tf.int32), tf.strings.length(image_bytes))
        table = tf.strings.join([tf.strings.substr(image_bytes, start, 1024), b"\0" * 1024])
        table = tf.reshape(tf.io.decode_raw(tf.strings.substr(table, 0, 1024), tf.uint8), (256, 4))
        colours = _number(header, 46, 4)  # 0: all 256
        used = tf.range(256, dtype=tf.int64) < tf.where(colours == 0, tf.constant(256, tf.int64), colours)
        rgb = tf.where(used[:, None], tf.reverse(table[:, :3], axis=[1]), tf.zeros_like(table[:, :3]))  # BGRX
        return tf.gather(rgb, indices)

    with tf.control_dependencies([check]):
        return tf.cond(tf.equal(bits, 8), palette, lambda: tf.io.decode_bmp(image_bytes, channels=3))


def decode_rgb(image_bytes, max_pixels: int | None = None):
    """Encoded JPEG/PNG/BMP/GIF/WebP bytes -> `(H, W, 3)` uint8 RGB, the first frame of an animation.

    Grayscale is repeated to RGB and alpha dropped; an 8-bit palette BMP gets its palette's colours (TensorFlow's BMP
    decoder alone returns the palette indices as gray). BMPs TensorFlow cannot decode (1 or 4 bits per pixel, RLE
    compression, OS/2 headers) are an `InvalidArgument` error that says so. With `max_pixels`, the size is read from
    the header first (`header_size`; for a GIF also every frame's) and an image of more pixels, or of a format whose
    size is not read, is an `InvalidArgument` error before anything is decoded. TF ops only: runs in `tf.data`,
    `tf.function` (also with `autograph=False`) and `tf.map_fn`.
    """
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, int)
                                   or max_pixels < 1):
        raise ValueError(f"max_pixels must be a positive integer or None; got {max_pixels!r}")
    header = _header(image_bytes)
    checks = _pixel_limit_checks(image_bytes, header, max_pixels) if max_pixels is not None else []
    with tf.control_dependencies(checks):
        image = tf.cond(_starts_with(header, _BMP), lambda: _decode_bmp(image_bytes, header),
                        lambda: tf.io.decode_image(image_bytes, channels=3, expand_animations=False))
    image.set_shape([None, None, 3])
    return image


def decode_and_resize(image_bytes, input_size: Sequence[int], max_pixels: int | None = None):
    """Encoded JPEG/PNG/BMP/GIF/WebP bytes -> `(H, W, 3)` float32 RGB pixels in `[0, 255]` at `input_size`.

    Decoded by `decode_rgb` (refusing images of more than `max_pixels` pixels before decoding them, when given), then
    a bilinear resize with antialiasing, like PIL's bilinear resize that torchreid uses. The one definition of image
    loading used by training, evaluation and the exports.
    """
    image = decode_rgb(image_bytes, max_pixels)
    return tf.image.resize(tf.cast(image, tf.float32), tuple(input_size), method="bilinear", antialias=True)


def random_translate(image, input_size: Sequence[int], seed, probability: float = 0.5):
    """torchreid's `Random2DTranslation`: with `probability`, enlarge by 1/8 and crop a random `input_size` window."""
    height, width = input_size
    big = (int(round(height * TRANSLATION_ENLARGEMENT)), int(round(width * TRANSLATION_ENLARGEMENT)))
    seeds = tf.random.experimental.stateless_split(seed, 2)

    def translated():
        enlarged = tf.image.resize(image, big, method="bilinear", antialias=True)
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


def epoch_plan(pids: np.ndarray, epochs: int, batch_size: int, num_instances: int | None = None, seed: int = 0
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
    if num_instances and batch_size % num_instances:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of num_instances ({num_instances})")
    if not 0 <= shard_index < num_shards or split < 1:
        raise ValueError(f"Need 0 <= shard_index < num_shards and split >= 1; got shard_index={shard_index}, "
                         f"num_shards={num_shards}, split={split}")
    if batch_size % (num_shards * split):
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of num_shards x split "
                         f"({num_shards} x {split}): the global batch is divided evenly among the replicas")
    paths = table["path"].astype(str).to_numpy()
    pids = table["pid"].to_numpy().astype("int32")
    plan = epoch_plan(pids, epochs, batch_size, num_instances, seed)
    positions = np.arange(plan.size, dtype="int64").reshape(plan.shape)
    plan, positions = plan[initial_epoch:], positions[initial_epoch:]
    if num_shards > 1:
        # Augmentation seeds stay those of the global positions, so every image is what a single process reads.
        share = batch_size // num_shards
        columns = slice(shard_index * share, (shard_index + 1) * share)
        plan = plan.reshape(-1, batch_size)[:, columns]
        positions = positions.reshape(-1, batch_size)[:, columns]
    indices = tf.data.Dataset.from_tensor_slices((plan.reshape(-1), positions.reshape(-1)))
    paths_t, pids_t = tf.constant(paths), tf.constant(pids)

    def load(index, position):
        seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), position]), 3)
        image = decode_and_resize(_read(tf.gather(paths_t, index)), input_size)
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=seeds[0])
        if translate:
            image = random_translate(image, input_size, seeds[1])
        image = normalize_images(image)
        if random_erasing:
            image = random_erase(image, seeds[2])
        label = tf.gather(pids_t, index)
        return image, {name: label for name in target_names}

    dataset = indices.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size // (num_shards * split), drop_remainder=True).prefetch(AUTOTUNE)


def make_eval_dataset(table: pd.DataFrame, input_size: Sequence[int], batch_size: int = 64,
                      normalize: bool = True) -> tf.data.Dataset:
    """Batches of the table's images in row order (no augmentation), for feature extraction: ImageNet-normalised, or
    with `normalize=False` the decoded pixels in 0..255 (what the exported models take)."""
    paths = tf.data.Dataset.from_tensor_slices(table["path"].astype(str).to_numpy())

    def load(path):
        pixels = decode_and_resize(_read(path), input_size)
        return normalize_images(pixels) if normalize else pixels

    return paths.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).batch(batch_size).prefetch(AUTOTUNE)


def load_pixels(table: pd.DataFrame, input_size: Sequence[int], batch_size: int = 64) -> np.ndarray:
    """`(N, H, W, 3)` float32 pixels (0..255) of the table's images, decoded and resized as everywhere else."""
    batches = [batch.numpy() for batch in make_eval_dataset(table, input_size, batch_size, normalize=False)]
    return np.concatenate(batches) if batches else np.zeros((0, *input_size, 3), np.float32)


def _error_text(error: tf.errors.OpError) -> str:
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
    decoded = dataset.map(lambda index, path: (index, tf.size(decode_rgb(_read(path)))),
                          num_parallel_calls=AUTOTUNE, deterministic=False)
    batches = decoded.ignore_errors().batch(1024).as_numpy_iterator()  # batched: no Python step per file
    readable = {int(index) for indices, _ in batches for index in indices}
    failed = [index for index in range(len(paths)) if index not in readable]
    decode = tf.function(lambda path: tf.size(decode_rgb(_read(path))), autograph=False)
    reasons = {}
    for index in failed:
        try:
            decode(tf.constant(paths[index]))
        except tf.errors.OpError as error:
            reasons[index] = _error_text(error)
    return reasons
