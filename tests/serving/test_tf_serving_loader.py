"""The export run as TF Serving runs it: the TF1 session loader (`saved_model_cli run`, `SessionModel`), warm-up
replay, every batch size of the batching config, and the self-check that guards all of it."""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from hacnn_tf.data.hacnn_preprocessor import HACNNPreprocessor
from hacnn_tf.export.saved_model import check_saved_model, remove_orphaned_staging
from hacnn_tf.layers.preprocessing import model_inputs
from hacnn_tf.serving.config import read_batching_parameters
from hacnn_tf.serving.tf_serving_loader import replay_warmup_requests

ROOT = pathlib.Path(__file__).resolve().parents[2]


def keras_embedding(model, pixels):
    return keras.ops.convert_to_numpy(model(model_inputs(model, tf.constant(pixels)), training=False)["embedding"])


def encoded_batch(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` random 64 x 32 images as integer-valued float pixels and as PNG files (lossless: same pixels)."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(count, 64, 32, 3)).astype("float32")
    return pixels, np.array([tf.io.encode_png(image.astype("uint8")).numpy() for image in pixels])


def test_saved_model_cli_run_serves_every_signature_equal_to_keras(exported_saved_model, export_model, tmp_path):
    """`saved_model_cli run` loads the SavedModel as TF Serving does (restore op in a TF1 session, tensors by name).
    An export whose signatures read variables the restore op does not restore fails here with "Could not find
    variable", though `tf.saved_model.load` runs it."""
    pixels, encoded = encoded_batch(3)
    np.save(tmp_path / "images.npy", pixels)
    np.save(tmp_path / "bytes.npy", encoded)
    cli = pathlib.Path(sys.executable).parent / "saved_model_cli"
    outputs = {}
    for signature, feed in (
        ("embed_images", "images=" + str(tmp_path / "images.npy")),
        ("serving_default", "image_bytes=" + str(tmp_path / "bytes.npy")),
    ):
        outdir = tmp_path / signature
        result = subprocess.run(
            [
                cli,
                "run",
                "--dir",
                str(exported_saved_model),
                "--tag_set",
                "serve",
                "--signature_def",
                signature,
                "--inputs",
                feed,
                "--outdir",
                str(outdir),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[signature] = np.load(outdir / "embedding.npy")
    np.testing.assert_allclose(outputs["embed_images"], keras_embedding(export_model, pixels), atol=1e-5)
    decoded = np.stack([HACNNPreprocessor((64, 32)).decode_and_resize(data).numpy() for data in encoded])
    np.testing.assert_allclose(outputs["serving_default"], keras_embedding(export_model, decoded), atol=1e-5)


def test_session_loader_accepts_every_batch_size_of_the_batching_config(session, export_model):
    """TF Serving's batching merges requests into batches padded to `allowed_batch_sizes`; each must run."""
    sizes = list(
        read_batching_parameters(ROOT / "export" / "tf_serving" / "batching_parameters.txt").allowed_batch_sizes
    )
    assert sizes[-1] == 64
    pixels, encoded = encoded_batch(sizes[-1], seed=1)
    for size in sizes:
        want = keras_embedding(export_model, pixels[:size])
        np.testing.assert_allclose(session.run("embed_images", {"images": pixels[:size]})["embedding"], want, atol=1e-5)
        got = session.run("serving_default", {"image_bytes": encoded[:size]})["embedding"]
        assert got.shape == (size, 64)
    np.testing.assert_allclose(got, keras_embedding(export_model, pixels), atol=1e-5)  # PNG is lossless at 64 x 32


def test_session_loader_refuses_bad_pixels_in_the_graph(session):
    images = np.zeros((1, 64, 32, 3), np.float32)
    images[0, 0, 0, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite"):
        session.run("embed_images", {"images": images})
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        session.run("serving_default", {"image_bytes": np.array([b"not an image"])})


def test_warmup_records_replay_under_the_session_loader(session, export_model, warmup_images):
    """TF Serving replays `assets.extra/tf_serving_warmup_requests` at load time; a failing record fails the load."""
    outputs = replay_warmup_requests(session)
    decoded = np.stack([HACNNPreprocessor((64, 32)).decode_and_resize(data).numpy() for data in warmup_images[:2]])
    embeddings = keras_embedding(export_model, decoded)
    assert [out["embedding"].shape for out in outputs] == [(1, 64), (8, 64)]
    np.testing.assert_allclose(outputs[0]["embedding"], embeddings[:1], atol=1e-5)
    np.testing.assert_allclose(outputs[1]["embedding"], embeddings[[0, 1, 0, 1, 0, 1, 0, 1]], atol=1e-5)


def test_self_check_fails_an_export_the_session_loader_cannot_serve(tmp_path, export_model):
    """The exporter of earlier versions (the Keras model held by a plain `tf.Module`) ran under
    `tf.saved_model.load` but not under TF Serving's loader (tensorflow/serving#2226); the self-check must refuse it."""
    module = tf.Module()
    module.model = export_model

    @tf.function(input_signature=[tf.TensorSpec((None, 64, 32, 3), tf.float32, "images")], autograph=False)
    def embed(images):
        return {"embedding": export_model(model_inputs(export_model, images), training=False)["embedding"]}

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string, "image_bytes")], autograph=False)
    def serve(image_bytes):
        return embed(
            tf.map_fn(
                HACNNPreprocessor((64, 32)).decode_and_resize,
                image_bytes,
                fn_output_signature=tf.TensorSpec((64, 32, 3), tf.float32),
            )
        )

    path = tmp_path / "tf_module_export"
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve, "embed_images": embed})
    loaded = tf.saved_model.load(str(path))  # the TF2 loader runs it ...
    assert loaded.signatures["embed_images"](images=tf.zeros((1, 64, 32, 3)))["embedding"].shape == (1, 64)
    with pytest.raises(RuntimeError, match="session loader"):  # ... TF Serving's does not
        check_saved_model(path, export_model)


_EXPORT_CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from conftest import TINY_MODEL
    from hacnn_tf import HACNN
    from hacnn_tf.export import export_saved_model
    export_saved_model(HACNN(None, **TINY_MODEL), sys.argv[1], "hacnn", 1)
""")


def _children(pid: int) -> list[int]:
    children = pathlib.Path(f"/proc/{pid}/task/{pid}/children")
    return [int(n) for n in children.read_text().split()] if children.exists() else []


def _alive(pid: int) -> bool:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_export_killed_during_its_self_check_leaves_no_process_and_its_staging_is_removed(tmp_path):
    """SIGKILL the exporter while its self-check child runs: the child dies with it (no orphan), nothing is left in
    $TMPDIR, no version folder appears, and the next export's clean-up removes the staging folder."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    export_dir = tmp_path / "export"
    parent = subprocess.Popen(
        [sys.executable, "-c", _EXPORT_CHILD, str(export_dir), str(ROOT / "tests")],
        env={**os.environ, "TMPDIR": str(tmpdir), "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    checker = None
    while checker is None and time.monotonic() < deadline and parent.poll() is None:
        checker = next(
            (
                pid
                for pid in _children(parent.pid)
                if b"tf_serving_loader" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
            ),
            None,
        )
        time.sleep(0.05)
    assert checker is not None, "the export never started its self-check child"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(200):
        if not _alive(checker):
            break
        time.sleep(0.05)
    assert not _alive(checker), "the self-check child outlived its killed parent"
    # (TensorFlow's AutoGraph leaves its generated modules in $TMPDIR in any killed TF process; nothing else may.)
    assert not [p for p in tmpdir.iterdir() if not p.name.startswith("__autograph_generated_file")]
    model_dir = export_dir / "hacnn"
    assert not (model_dir / "1").exists()
    staging = [p for p in model_dir.iterdir() if ".partial-" in p.name]
    assert len(staging) == 1
    assert remove_orphaned_staging(model_dir) == staging
    assert not list(model_dir.iterdir())


def test_a_live_export_staging_folder_is_left_alone(tmp_path):
    from hacnn_tf.io_utils import staging_folder

    with staging_folder(tmp_path, ".1.partial-", locked=True) as staging:
        (staging / "saved_model.pb").write_bytes(b"in progress")
        assert remove_orphaned_staging(tmp_path) == []
        assert staging.exists()
    assert not staging.exists()
