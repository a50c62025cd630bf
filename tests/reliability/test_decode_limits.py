"""The graph decoder (`decode_rgb`, `HACNNPreprocessor`): palette BMPs in their colours, BMPs TensorFlow cannot read
refused clearly, image sizes read from headers, and decompression bombs refused before anything is decoded."""

from __future__ import annotations

import io
import json
import pathlib
import struct
import subprocess
import sys
import zlib

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from hacnn_tf.data.hacnn_preprocessor import HACNNPreprocessor
from hacnn_tf.data.image_decoding import DEFAULT_MAX_PIXELS, decode_rgb, header_size
from hacnn_tf.data.pipeline import make_eval_dataset

REPO = pathlib.Path(__file__).resolve().parents[2]


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def constant_png(width: int, height: int, value: int = 200, rows_per_block: int = 100) -> bytes:
    """An 8-bit grayscale PNG of one value, without holding its pixels: one block of rows is deflated once with a
    full flush (byte-aligned, history reset), so the compressed stream is that piece repeated."""
    block = (b"\0" + bytes([value]) * width) * rows_per_block  # filter type 0 + the row
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(height // rows_per_block):
        checksum = zlib.adler32(block, checksum)
    stream = (
        b"\x78\xda"
        + piece * (height // rows_per_block)
        + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
        + struct.pack(">I", checksum)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b"")


def constant_jpeg(width: int, height: int) -> bytes:
    """A baseline grayscale mid-gray JPEG (sides multiples of 32) without holding its pixels: with the standard
    Huffman tables every 8 x 8 block codes a zero DC difference and end-of-block in 6 bits, so four blocks are the 3
    bytes PIL writes for a 32 x 8 mid-gray image; its header gets the new size."""
    data = encode(Image.new("L", (32, 8), 128), "JPEG", quality=90)
    sos = data.index(b"\xff\xda")
    scan = sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]
    assert data[scan:-2] == b"\x28\xa2\x8a"
    header = bytearray(data[:scan])
    sof = data.index(b"\xff\xc0")
    header[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(header) + b"\x28\xa2\x8a" * (width * height // 256) + b"\xff\xd9"


def serving_decode(max_pixels: int | None, size=(16, 8)):
    """Decoding as the `serving_default` signature does: the preprocessor's call (a `tf.map_fn`) inside
    `tf.function(autograph=False)`."""
    return tf.function(HACNNPreprocessor(size, max_pixels=max_pixels), autograph=False)


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    """One 9 x 17 image (width x height) in every format and variant the decoder reads."""
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (17, 9, 3), dtype=np.uint8))
    top_down = bytearray(encode(rgb, "BMP"))
    top_down[22:26] = struct.pack("<i", -17)  # a negative height: rows stored top to bottom
    return {
        "jpeg": encode(rgb, "JPEG"),
        "progressive_jpeg": encode(rgb, "JPEG", progressive=True),
        "png": encode(rgb, "PNG"),
        "bmp24": encode(rgb, "BMP"),
        "bmp32": encode(rgb.convert("RGBA"), "BMP"),
        "bmp_top_down": bytes(top_down),
        "bmp_palette": encode(rgb.convert("P", colors=50), "BMP"),
        "gif": encode(rgb, "GIF"),
        "webp_lossy": encode(rgb, "WEBP"),
        "webp_lossless": encode(rgb, "WEBP", lossless=True),
        "webp_extended": encode(rgb.convert("RGBA"), "WEBP", exif=b"Exif\0\0"),
    }


# ------------------------------------------------------------------------------------------------------------
# Palette and undecodable BMPs


def test_palette_bmp_decodes_to_its_colours_in_training_and_serving(tmp_path):
    red = encode(Image.new("RGB", (8, 16), (255, 0, 0)).convert("P"), "BMP")
    assert red[28] == 8  # 8 bits per pixel: palette indices
    expected = np.broadcast_to([255.0, 0, 0], (16, 8, 3))
    np.testing.assert_array_equal(HACNNPreprocessor((16, 8)).decode_and_resize(red).numpy(), expected)
    np.testing.assert_array_equal(serving_decode(DEFAULT_MAX_PIXELS)(tf.constant([red]))[0].numpy(), expected)
    # many colours, a partial palette: exactly PIL's RGB conversion
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (16, 8, 3), dtype=np.uint8)).convert("P", colors=37)
    data = encode(image, "BMP")
    np.testing.assert_array_equal(decode_rgb(data).numpy(), np.asarray(image.convert("RGB")))
    # the training / evaluation pipeline reads files through the same function
    (tmp_path / "red.bmp").write_bytes(red)
    batch = next(iter(make_eval_dataset(pd.DataFrame({"path": [str(tmp_path / "red.bmp")]}), (16, 8), normalize=False)))
    np.testing.assert_array_equal(batch[0].numpy(), expected)


def test_grayscale_bmp_and_every_format_decode_as_pil_does(images):
    rgb = np.asarray(Image.open(io.BytesIO(images["png"])).convert("RGB"))
    for name in ("png", "bmp24", "bmp32", "webp_lossless"):
        np.testing.assert_array_equal(decode_rgb(images[name]).numpy(), rgb, err_msg=name)
    np.testing.assert_array_equal(decode_rgb(images["bmp_top_down"]).numpy(), rgb[::-1])
    gray = Image.fromarray(rgb).convert("L")
    np.testing.assert_array_equal(decode_rgb(encode(gray, "BMP")).numpy(), np.asarray(gray.convert("RGB")))


def test_bmps_tensorflow_cannot_read_are_refused_clearly():
    one_bit = encode(Image.new("1", (8, 16), 1), "BMP")
    rle = bytearray(encode(Image.new("L", (8, 16), 7), "BMP"))
    rle[30:34] = struct.pack("<I", 1)  # BI_RLE8
    for data in (one_bit, bytes(rle)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="BMP not decodable: TensorFlow reads uncompressed"):
            serving_decode(None)(tf.constant([data]))


# ------------------------------------------------------------------------------------------------------------
# Sizes from headers, pixel limits


def test_header_size_of_every_format(images):
    for name, data in images.items():
        assert header_size(data).numpy().tolist() == [17, 9], name
    assert header_size(b"not an image").numpy().tolist() == [-1, -1]
    assert header_size(b"\xff\x0a\xfa").numpy().tolist() == [-1, -1]  # JPEG XL: its size is not read
    assert header_size(b"").numpy().tolist() == [-1, -1]


def test_pixel_limit_is_exact_for_every_format_in_the_serving_graph(images):
    fits, one_less = serving_decode(17 * 9), serving_decode(17 * 9 - 1)
    for name, data in images.items():
        assert fits(tf.constant([data])).shape == (1, 16, 8, 3), name
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"more than the limit of 152 pixels.*\[17\] \[9\]"):
            one_less(tf.constant([data]))
    # eagerly as well (the training pipeline's graph is a tf.data function)
    assert HACNNPreprocessor((16, 8), max_pixels=153).decode_and_resize(images["png"]).shape == (16, 8, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Image too large"):
        HACNNPreprocessor((16, 8), max_pixels=152).decode_and_resize(images["png"])
    # a format whose size is not read is refused under a limit, and still goes to the decoder without one
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format: with a pixel limit"):
        fits(tf.constant([b"\xff\x0a\xfa\x7f"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        serving_decode(None)(tf.constant([b"not an image"]))
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="max_pixels must be a positive integer"):
            decode_rgb(images["png"], bad)


def small_screen_gif(frame: tuple[int, int], screen: tuple[int, int] = (10, 10)) -> bytes:
    """A one-frame GIF whose logical screen (the size in its header) is smaller than its frame."""
    data = bytearray(encode(Image.new("P", frame, 0), "GIF"))
    data[6:10] = struct.pack("<HH", *screen)
    return bytes(data)


def test_gif_frames_count_against_the_limit():
    """giflib decodes every frame at its descriptor's size, which the logical screen does not bound: a 10 x 10 GIF
    with an 800 x 800 frame decodes to 800 x 800 x 3."""
    bomb = small_screen_gif((800, 800))
    assert header_size(bomb).numpy().tolist() == [10, 10]
    assert decode_rgb(bomb).shape == (800, 800, 3)
    assert decode_rgb(bomb, max_pixels=800 * 800).shape == (800, 800, 3)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"GIF too large: its frames hold more than the limit "
        r"of 639999 pixels.*\[640000\]",
    ):
        serving_decode(800 * 800 - 1)(tf.constant([bomb]))
    rng = np.random.default_rng(2)
    frames = [Image.fromarray(rng.integers(0, 256, (17, 9, 3), dtype=np.uint8)) for _ in range(3)]
    animation = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert serving_decode(3 * 153)(tf.constant([animation])).shape == (1, 16, 8, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"GIF too large.*\[459\]"):
        serving_decode(3 * 153 - 1)(tf.constant([animation]))


_BOMB_SCRIPT = """
import json, sys, time
import tensorflow as tf
from hacnn_tf.data.hacnn_preprocessor import HACNNPreprocessor
from hacnn_tf.data.image_decoding import DEFAULT_MAX_PIXELS

def peak_kb():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))

decode = tf.function(lambda batch: tf.map_fn(
    HACNNPreprocessor((160, 64), max_pixels=DEFAULT_MAX_PIXELS).decode_and_resize, batch,
    fn_output_signature=tf.TensorSpec((160, 64, 3), tf.float32)), autograph=False)
decode(tf.constant([open(sys.argv[1], "rb").read()]))  # traced and warm
results = {}
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    before, start = peak_kb(), time.perf_counter()
    try:
        decode(tf.constant([data]))
        message = None
    except tf.errors.InvalidArgumentError as error:
        message = error.message
    results[path] = {"seconds": time.perf_counter() - start, "peak_growth_mb": (peak_kb() - before) / 1024,
                     "message": message}
print(json.dumps(results))
"""


def test_decompression_bombs_are_refused_before_decoding(tmp_path, monkeypatch):
    """Refused within a second, in a fresh process whose peak resident memory grows by less than 200 MB: a 257 KB PNG
    of 15000 x 15000 (decoded 675 MB as uint8 and 2.7 GB as float32: 3.4 GB of peak memory measured without the
    limit), a 4.7 MB JPEG of 20000 x 20000 (6.2 GB measured) and a 48 KB GIF of a 10 x 10 screen holding an
    8000 x 8000 frame."""
    png, jpeg, gif = constant_png(15000, 15000), constant_jpeg(20000, 20000), small_screen_gif((8000, 8000))
    assert len(png) < 300_000 and len(jpeg) < 5_000_000 and len(gif) < 50_000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # PIL refuses to open them by default
    for data, side in ((png, 15000), (jpeg, 20000), (gif, 8000)):  # PIL gives a GIF's frame size too
        assert Image.open(io.BytesIO(data)).size == (side, side)
    # the same constructions at a small size are valid images of the intended value
    np.testing.assert_array_equal(decode_rgb(constant_png(300, 200)).numpy(), np.full((200, 300, 3), 200))
    np.testing.assert_array_equal(decode_rgb(constant_jpeg(96, 64)).numpy(), np.full((64, 96, 3), 128))
    expected = {
        "bomb.png": (png, "[15000] [15000]"),
        "bomb.jpg": (jpeg, "[20000] [20000]"),
        "bomb.gif": (gif, "GIF too large: its frames hold more than the limit"),
    }
    (tmp_path / "small.jpg").write_bytes(constant_jpeg(64, 96))
    for name, (data, _) in expected.items():
        (tmp_path / name).write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-c", _BOMB_SCRIPT, str(tmp_path / "small.jpg"), *(str(tmp_path / name) for name in expected)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (_, message) in expected.items():
        outcome = outcomes[str(tmp_path / name)]
        assert outcome["message"] and f"more than the limit of {DEFAULT_MAX_PIXELS} pixels" in outcome["message"]
        assert message in outcome["message"], outcome
        assert outcome["seconds"] < 5.0 and outcome["peak_growth_mb"] < 200, (name, outcome)


def test_limit_holds_in_a_saved_model_loaded_into_a_tf1_session(tmp_path):
    """The checks are plain graph ops: a SavedModel using them, loaded the TF1 way (a graph run in a session),
    decodes a small image and refuses a large one."""
    module = tf.Module()
    module.decode = tf.function(
        lambda image_bytes: {
            "pixels": tf.map_fn(
                HACNNPreprocessor((16, 8), max_pixels=100 * 64).decode_and_resize,
                image_bytes,
                fn_output_signature=tf.TensorSpec((16, 8, 3), tf.float32),
            )
        },
        input_signature=[tf.TensorSpec((None,), tf.string, "image_bytes")],
        autograph=False,
    )
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.decode})
    small = encode(Image.new("RGB", (64, 100), (10, 20, 30)), "PNG")
    large = encode(Image.new("RGB", (64, 101), (10, 20, 30)), "JPEG")
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(tmp_path / "sm"))
        signature = meta_graph.signature_def["serving_default"]
        feed, fetch = signature.inputs["image_bytes"].name, signature.outputs["pixels"].name
        pixels = session.run(fetch, {feed: [small]})
        np.testing.assert_allclose(pixels[0], np.broadcast_to([10.0, 20, 30], (16, 8, 3)), atol=1e-4)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"more than the limit of 6400 pixels.*\[101\] \[64\]"):
            session.run(fetch, {feed: [small, large]})
