"""Memory per request bounded whatever the number of boxes: the box signatures refuse a row of more than the
export's `max_boxes` boxes at once (under TF Serving's session loader and `tf.saved_model.load`), crop and embed a
chunk of boxes at a time so that a request of `max_boxes` boxes per row (one row or several) grows the process by a
bounded amount on the paper-size model, `ReIDEmbedder` does the same in Python, and the TF Serving clients refuse a
row width past the limit before they allocate anything."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from hacnn_tf.cli import main
from hacnn_tf.export import export_saved_model, verify_manifest
from hacnn_tf.export.saved_model import _embedding_fn, exported_max_boxes
from hacnn_tf.serving import box_rows, build_boxes_rest_body, tf_serving_loader
from hacnn_tf.serving.signatures import MAX_BOXES
from hacnn_tf.tracking import CHUNK_SIZE, ReIDEmbedder, embed_encoded_frames, embed_frame_boxes

REPO = pathlib.Path(__file__).resolve().parents[2]
LIMIT_MESSAGE = f"boxes holds more than max_boxes={MAX_BOXES} boxes per row, the limit this model was exported with"
# Peak resident growth allowed for one request of MAX_BOXES boxes per row (1 or 4 rows of 1080p frames) on the
# paper-size model; the whole request embedded in one model call grew it by 1359 MB for one row of 256 boxes.
PAPER_REQUEST_BOUND_MB = 700
# Peak resident growth allowed for ReIDEmbedder on 8,000 boxes of a 1080p frame with the tiny model (every crop held
# before embedding grew it by 794 MB).
EMBEDDER_BOUND_MB = 100


def random_boxes(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """`shape + (4,)` float32 person-sized boxes inside a 1080 x 1920 frame, all valid."""
    x1, y1 = rng.uniform(0, 1800, shape), rng.uniform(0, 800, shape)
    return np.stack([x1, y1, x1 + rng.uniform(20, 120, shape), y1 + rng.uniform(60, 280, shape)], -1).astype(np.float32)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def png(frame) -> bytes:
    return tf.io.encode_png(frame).numpy()


def test_ten_times_max_boxes_is_refused_in_milliseconds_naming_the_limit(
    session, exported_saved_model, frame, png
) -> None:
    """A row of 10 x max_boxes boxes (the session already warm, as a server is) is InvalidArgument within a second,
    before anything is decoded or cropped, through both signatures and both loaders; a row of max_boxes boxes is
    embedded as ReIDEmbedder embeds it, chunk boundaries included."""
    assert exported_max_boxes(exported_saved_model) == MAX_BOXES
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, (1, MAX_BOXES))
    requests = {"embed_boxes_pixels": {"frames": frame[None]}, "embed_boxes": {"frame_bytes": np.array([png], object)}}
    loaded = tf.saved_model.load(str(exported_saved_model))
    for signature, frames in requests.items():
        at_limit = session.run(signature, {**frames, "boxes": boxes})["embedding"]
        assert at_limit.shape == (1, MAX_BOXES, 64) and np.any(at_limit != 0, axis=-1).all()
        tf2 = loaded.signatures[signature](
            **{name: tf.constant(value) for name, value in frames.items()}, boxes=tf.constant(boxes)
        )["embedding"]
        np.testing.assert_allclose(tf2.numpy(), at_limit, atol=1e-5, rtol=0)
        too_many = {**frames, "boxes": random_boxes(rng, (1, 10 * MAX_BOXES))}
        start = time.perf_counter()
        with pytest.raises(tf.errors.InvalidArgumentError, match=LIMIT_MESSAGE) as error:
            session.run(signature, too_many)
        assert time.perf_counter() - start < 1.0
        assert f"[{10 * MAX_BOXES}]" in error.value.message  # the row's width
        start = time.perf_counter()
        with pytest.raises(tf.errors.InvalidArgumentError, match=LIMIT_MESSAGE):
            loaded.signatures[signature](**{name: tf.constant(value) for name, value in too_many.items()})
        assert time.perf_counter() - start < 1.0
        one_more = {**frames, "boxes": np.zeros((1, MAX_BOXES + 1, 4), np.float32)}
        with pytest.raises(tf.errors.InvalidArgumentError, match=LIMIT_MESSAGE):
            session.run(signature, one_more)
    python = ReIDEmbedder(exported_saved_model)(frame, boxes[0])
    np.testing.assert_allclose(at_limit[0], python, atol=1e-5, rtol=0)


def test_chunk_boundaries_do_not_change_the_embeddings(export_model, frame, png) -> None:
    """Rows cut into chunks of 3 boxes (across rows for pixel frames) give what one chunk of every box gives, and
    what ReIDEmbedder gives; no boxes, no frames."""
    embed = _embedding_fn(export_model)
    input_size, dim = export_model.input_size, export_model.embedding_dim
    boxes = (random_boxes(np.random.default_rng(1), (2, 7)) / [20, 10, 20, 10]).astype(np.float32)
    boxes[0, 2] = [0, 0, 0, 0]  # padding: a zero row
    frames = np.stack([frame[:120, :200], frame[200:320, 300:500]])
    embed_crops = lambda images: embed(images)["embedding"]
    # As in the signatures: in a graph (eagerly, a TensorArray of no rows cannot concatenate).
    pixels = lambda size: tf.function(
        lambda f, b: embed_frame_boxes(embed_crops, f, b, input_size, dim, size), autograph=False
    )
    encoded_frames = tf.function(
        lambda data, b: embed_encoded_frames(embed_crops, data, b, input_size, dim, chunk_size=3), autograph=False
    )
    chunked = pixels(3)(frames, boxes).numpy()
    whole = pixels(64)(frames, boxes).numpy()
    encoded = np.array([tf.io.encode_png(f).numpy() for f in frames])
    from_bytes = encoded_frames(encoded, boxes).numpy()
    python = ReIDEmbedder(export_model, batch_size=3)(list(frames), list(boxes)).reshape(chunked.shape)
    assert chunked.shape == (2, 7, dim) and not chunked[0, 2].any() and np.any(chunked != 0, axis=-1).sum() == 13
    for other in (whole, from_bytes, python):
        np.testing.assert_allclose(chunked, other, atol=1e-5, rtol=0)
    assert pixels(64)(frames, boxes[:, :0]).shape == (2, 0, dim)
    assert encoded_frames(tf.constant(encoded[:0]), tf.constant(boxes[:0])).shape == (0, 7, dim)


def test_a_limit_that_is_not_a_positive_integer_is_refused_before_anything_is_written(export_model, tmp_path) -> None:
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match=rf"max_boxes must be a positive integer; got {bad!r}"):
            export_saved_model(export_model, tmp_path, max_boxes=bad, check=False)
    with pytest.raises(SystemExit, match="--max-boxes must be positive; got 0"):
        main(["export", str(tmp_path / "missing.keras"), str(tmp_path / "out"), "--max-boxes", "0"])
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_export_takes_its_own_limit(export_model, tmp_path) -> None:
    """`hacnn-tf export --max-boxes 3`: the self-checked SavedModel takes rows of 3 boxes and refuses 4, and its graph
    and its manifest say 3."""
    checkpoint = tmp_path / "tiny.keras"
    export_model.save(checkpoint)
    main(["export", str(checkpoint), str(tmp_path / "out"), "--max-boxes", "3"])
    manifest = verify_manifest(tmp_path / "out" / "saved_model-fp32")
    assert manifest["input"]["boxes"]["max_boxes"] == 3
    version = tmp_path / "out" / "saved_model-fp32" / manifest["model"]
    assert exported_max_boxes(version) == 3
    embed = tf.saved_model.load(str(version)).signatures["embed_boxes_pixels"]
    frames = tf.zeros((1, 40, 30, 3), tf.uint8)
    assert embed(frames=frames, boxes=tf.zeros((1, 3, 4)))["embedding"].shape == (1, 3, 64)
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than max_boxes=3 boxes per row"):
        embed(frames=frames, boxes=tf.zeros((1, 4, 4)))


_PAPER_REQUESTS = """
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from tf_serving_loader import SessionModel  # the server's loader, without hacnn_tf
import tensorflow as tf

def status_mb(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field)) / 1024

model = SessionModel(sys.argv[2])
boxes = np.load(sys.argv[3])
rng = np.random.default_rng(0)
frames = rng.integers(0, 256, (4, 1080, 1920, 3), dtype=np.uint8)
requests = {
    "embed_boxes_pixels, 1 row": ("embed_boxes_pixels", {"frames": frames[:1], "boxes": boxes[:1]}),
    "embed_boxes_pixels, 4 rows": ("embed_boxes_pixels", {"frames": frames, "boxes": boxes}),
    "embed_boxes, 1 row": ("embed_boxes", {"frame_bytes": np.array([tf.io.encode_png(frames[0]).numpy()], object),
                                           "boxes": boxes[:1]}),
}
results = {}
for name, (signature, feeds) in requests.items():
    model.run(signature, {key: value[:1, :2] if key == "boxes" else value[:1] for key, value in feeds.items()})
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # VmHWM back to the resident size: the peak of this request alone
    before, start = status_mb("VmRSS"), time.perf_counter()
    embedding = model.run(signature, feeds)["embedding"]
    results[name] = {"seconds": time.perf_counter() - start, "growth_mb": status_mb("VmHWM") - before,
                     "shape": list(embedding.shape), "embedded": int(np.any(embedding != 0, axis=-1).sum())}
print(json.dumps(results))
"""


@pytest.mark.slow
def test_max_boxes_per_row_grows_a_paper_size_server_by_a_bounded_amount(paper_model, tmp_path) -> None:
    """The paper-size export under TF Serving's session loader in a fresh process: one row of max_boxes boxes, four
    such rows (4 x as many boxes) and one encoded frame's row each raise the peak resident memory by less than
    PAPER_REQUEST_BOUND_MB, and every box is embedded."""
    exported = export_saved_model(paper_model, tmp_path / "export", check=False)
    boxes_path = tmp_path / "boxes.npy"
    np.save(boxes_path, random_boxes(np.random.default_rng(2), (4, MAX_BOXES)))
    result = subprocess.run(
        [
            sys.executable,
            "-P",
            "-c",
            _PAPER_REQUESTS,
            str(pathlib.Path(tf_serving_loader.__file__).parent),
            str(exported),
            str(boxes_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    for name, rows in (("embed_boxes_pixels, 1 row", 1), ("embed_boxes_pixels, 4 rows", 4), ("embed_boxes, 1 row", 1)):
        outcome = outcomes[name]
        assert outcome["shape"] == [rows, MAX_BOXES, paper_model.embedding_dim], outcome
        assert outcome["embedded"] == rows * MAX_BOXES, outcome
        assert outcome["growth_mb"] < PAPER_REQUEST_BOUND_MB, (name, outcome)


_EMBEDDER_BOXES = """
import json, sys, time
import numpy as np
from hacnn_tf import HACNN
from hacnn_tf.tracking import ReIDEmbedder

def status_mb(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field)) / 1024

model = HACNN(None, **json.loads(sys.argv[1]))
frame = np.random.default_rng(3).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
boxes = np.load(sys.argv[2])
embedder = ReIDEmbedder(model)
embedder(frame, boxes[:200])  # traced and warm
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")
before, start = status_mb("VmRSS"), time.perf_counter()
embedding = embedder(frame, boxes)
results = {"seconds": time.perf_counter() - start, "growth_mb": status_mb("VmHWM") - before,
           "shape": list(embedding.shape), "embedded": int(np.any(embedding != 0, axis=-1).sum())}
results["max_abs_diff"] = float(np.abs(embedding[::997] - embedder(frame, boxes[::997])).max())
print(json.dumps(results))
"""


@pytest.mark.slow
def test_reid_embedder_on_8000_boxes_grows_by_a_bounded_amount(tmp_path) -> None:
    """8,000 boxes of one 1080p frame, tiny model, in a fresh process: the peak resident memory grows by less than
    EMBEDDER_BOUND_MB, and every 997th row equals the same boxes embedded in a small call."""
    from conftest import TINY_MODEL

    boxes = random_boxes(np.random.default_rng(4), (8000,))
    np.save(tmp_path / "boxes.npy", boxes)
    result = subprocess.run(
        [sys.executable, "-c", _EMBEDDER_BOXES, json.dumps(TINY_MODEL), str(tmp_path / "boxes.npy")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["shape"] == [8000, 64] and outcome["embedded"] == 8000
    assert outcome["growth_mb"] < EMBEDDER_BOUND_MB, outcome
    assert outcome["max_abs_diff"] <= 1e-5, outcome


def test_clients_refuse_rows_wider_than_max_boxes_before_allocating(png) -> None:
    """`boxes_per_row=10**9` (whose padding alone would be 16 GB) is refused at once with one line naming the limit;
    the limit itself is accepted; an export with another limit is passed as `max_boxes`."""
    boxes = [np.array([[1, 2, 30, 40]], np.float32)]
    for build in (box_rows, build_boxes_rest_body):
        start = time.perf_counter()
        with pytest.raises(ValueError) as error:
            build([png], boxes, boxes_per_row=10**9)
        assert time.perf_counter() - start < 0.1
        assert str(error.value).startswith(
            f"boxes_per_row 1000000000 is above max_boxes {MAX_BOXES}, the most boxes "
            "per row the export's box signatures take"
        )
        assert "\n" not in str(error.value)
    _, row_boxes, take = box_rows([png], boxes, boxes_per_row=MAX_BOXES)
    assert row_boxes.shape == (1, MAX_BOXES, 4) and take.tolist() == [0]
    with pytest.raises(ValueError, match="boxes_per_row 9 is above max_boxes 8"):
        box_rows([png], boxes, boxes_per_row=9, max_boxes=8)
    assert box_rows([png], boxes, boxes_per_row=300, max_boxes=512)[1].shape == (1, 300, 4)
    assert CHUNK_SIZE <= MAX_BOXES
