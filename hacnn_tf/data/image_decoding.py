"""Encoded images to RGB pixels as TF ops: JPEG, PNG, BMP (palette ones in their colours), GIF and WebP, with an
optional pixel limit read from the file's header before anything is decoded. `HACNNPreprocessor.decode` is this
module's `decode_rgb`; training, evaluation, the exports and the tracker decode with it."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# The default pixel limit of `decode_rgb(max_pixels=...)`, what the exported serving signature decodes at
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
    return tf.reduce_sum(header[start : start + length] * (weights[::-1] if big_endian else weights))


def _starts_with(header, magic: bytes, at: int = 0):
    return tf.reduce_all(tf.equal(header[at : at + len(magic)], list(magic)))


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
    return tf.cond(
        _starts_with(header, _JPEG),
        lambda: tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64),
        lambda: size,
    )


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
        block_end = tf.where(
            image, position + 11 + table(at(position + 9)), tf.where(extension, position + 2, length)
        )  # the trailer (or junk) ends the walk
        return (
            tf.where(in_chain, position + byte + 1, block_end),
            tf.where(in_chain, byte > 0, True),
            total + tf.where(~in_chain & image, pixels, zero),
        )

    start = 13 + table(at(10))  # header, logical screen descriptor, global colour table
    _, _, total = tf.while_loop(
        lambda position, in_chain, total: position < length, step, (start, tf.constant(False), zero)
    )
    return total


def _pixel_limit_checks(image_bytes, header, max_pixels: int) -> list:
    """Assertions that the image's header names a size of at most `max_pixels` pixels (for a GIF, also all its
    frames together)."""
    size = header_size(image_bytes, header)
    known = tf.debugging.Assert(
        size[0] >= 0,
        [
            "Unknown image file format: with a pixel limit one of JPEG, PNG, GIF, BMP or WebP is required, whose size is "  # noqa: E501
            "read before decoding"
        ],
    )
    with tf.control_dependencies([known]):
        small = tf.debugging.Assert(
            size[0] * size[1] <= max_pixels,
            [
                f"Image too large: more than the limit of {max_pixels} pixels, refused before decoding; height x width:",  # noqa: E501
                size[0],
                size[1],
            ],
        )
    frames = tf.cond(
        _starts_with(header, _GIF), lambda: _gif_frame_pixels(image_bytes), lambda: tf.constant(0, tf.int64)
    )
    with tf.control_dependencies([small]):
        small_frames = tf.debugging.Assert(
            frames <= max_pixels,
            [
                f"GIF too large: its frames hold more than the limit of {max_pixels} pixels, refused before decoding; "
                "pixels of all frames:",
                frames,
            ],
        )
    return [known, small, small_frames]


def _decode_bmp(image_bytes, header):
    """A BMP as RGB: refused clearly when TensorFlow's decoder cannot read it; an 8-bit BMP's palette indices (which
    `tf.io.decode_bmp` returns as one gray channel) looked up in its palette."""
    bits, compression, header_bytes = _number(header, 28, 2), _number(header, 30, 4), _number(header, 14, 4)
    readable = (
        tf.reduce_any(tf.equal(bits, _BMP_BITS))
        & tf.reduce_any(tf.equal(compression, _BMP_COMPRESSIONS))
        & (header_bytes >= _BMP_MIN_HEADER)
    )
    check = tf.debugging.Assert(
        readable,
        [
            f"BMP not decodable: TensorFlow reads uncompressed BMPs of {', '.join(map(str, _BMP_BITS))} bits per pixel "
            f"with a header of at least {_BMP_MIN_HEADER} bytes; bits per pixel, compression, header bytes:",
            bits,
            compression,
            header_bytes,
        ],
    )

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
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1):
        raise ValueError(f"max_pixels must be a positive integer or None; got {max_pixels!r}")
    header = _header(image_bytes)
    checks = _pixel_limit_checks(image_bytes, header, max_pixels) if max_pixels is not None else []
    with tf.control_dependencies(checks):
        image = tf.cond(
            _starts_with(header, _BMP),
            lambda: _decode_bmp(image_bytes, header),
            lambda: tf.io.decode_image(image_bytes, channels=3, expand_animations=False),
        )
    image.set_shape([None, None, 3])
    return image
