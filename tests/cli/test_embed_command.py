"""`hacnn-tf embed`, run as a user runs it (subprocesses, a few at a time): folders of real-sized crops, an export
format folder, a data set split, each against the exported SavedModel's `serving_default` (or the Keras model) on the
same bytes; and its refusals, each one line `hacnn-tf embed: error: ...` naming the file, exit 2, nothing written."""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hacnn_tf.export.saved_model import row_cosines
from hacnn_tf.manifest import write_manifest
from hacnn_tf.runtime.keras_model import KerasEmbedder
from hacnn_tf.serving.signatures import BYTES_INPUT, OUTPUT, SERVING_SIGNATURE

HACNN_TF = [sys.executable, "-m", "hacnn_tf.cli", "embed"]
CONCURRENT = 3
UNWRITABLE = "/sys/hacnn_tf_embed"  # sysfs refuses new folders even to root (EPERM)
# Crop sizes (height, width): re-id sized boxes, and boxes cut from a 1920 x 1080 frame.
SIZES = ((128, 64), (128, 64), (700, 300), (1080, 480), (1080, 1920))


def write_crops(folder: pathlib.Path) -> list[pathlib.Path]:
    """JPEG crops of `SIZES` (smooth random pixels) under `folder`, two in a subfolder, with a hidden image and a
    text file that the command leaves out; returns the crops in the command's order (sorted paths)."""
    paths = []
    for index, size in enumerate(SIZES):
        coarse = np.random.default_rng(index).uniform(0, 255, size=(12, 6, 3)).astype("float32")
        pixels = tf.cast(tf.clip_by_value(tf.image.resize(coarse, size, method="bicubic"), 0, 255), tf.uint8)
        path = folder / ("sub" if index >= 3 else "") / f"crop{index}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tf.io.encode_jpeg(pixels, quality=90).numpy())
        paths.append(path)
    shutil.copy(paths[0], folder / ".hidden.jpg")
    (folder / "notes.txt").write_text("not an image")
    return sorted(paths)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, exported_saved_model, export_model, tiny_synthetic):
    """name -> (exit code, stdout, stderr, output path) of each case, run `CONCURRENT` at a time."""
    tmp = tmp_path_factory.mktemp("embed")
    crops = write_crops(tmp / "crops")
    checkpoint = tmp / "tiny.keras"
    export_model.save(checkpoint)
    formats = tmp / "export" / "saved_model-fp32"
    shutil.copytree(exported_saved_model, formats / "hacnn" / "1")
    write_manifest(formats, "saved_model", "fp32", {"name": "images"}, {}, model="hacnn/1")
    (tmp / "bad").mkdir()
    shutil.copy(crops[0], tmp / "bad" / "a.jpg")
    (tmp / "bad" / "b_truncated.jpg").write_bytes(crops[2].read_bytes()[:300])
    (tmp / "empty" / "sub").mkdir(parents=True)
    (tmp / "empty" / "sub" / "readme.txt").write_text("no images here")
    root = pathlib.Path(tiny_synthetic.query["path"].iloc[0]).parents[1]
    model = str(exported_saved_model)
    out = tmp / "out"
    cases = {
        "folder": ([model, str(tmp / "crops"), "--batch-size", "2"], out / "folder.npz"),
        "format folder, --normalize": (
            [str(formats), str(crops[0]), str(crops[4]), "--normalize"],
            out / "normalized.npz",
        ),
        "data set split": (
            [str(checkpoint), "--dataset", "market1501", "--root", str(root), "--split", "query"],
            out / "query.npz",
        ),
        "an unreadable image": ([model, str(tmp / "bad")], out / "bad.npz"),
        "an empty folder": ([model, str(tmp / "empty")], out / "empty.npz"),
        "a missing input": ([model, str(tmp / "nothere")], out / "missing.npz"),
        "an unknown data set": (
            [model, "--dataset", "market1502", "--root", str(root), "--split", "query"],
            out / "unknown.npz",
        ),
        "an unwritable output": ([model, str(crops[0])], pathlib.Path(UNWRITABLE) / "out.npz"),
        "an output in /proc": ([model, str(crops[0])], pathlib.Path("/proc/x.npz")),
        "a missing model": ([str(tmp / "nomodel.keras"), str(crops[0])], out / "nomodel.npz"),
        "a folder that is no model": ([str(tmp / "crops"), str(crops[0])], out / "nomodel2.npz"),
    }
    environment = {key: value for key, value in os.environ.items() if key != "HACNN_TF_DEBUG"}

    def run(case):
        arguments, output = case
        result = subprocess.run(
            [*HACNN_TF, *arguments, "--output", str(output)],
            cwd=tmp,
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
        )
        return result.returncode, result.stdout, result.stderr, output

    with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:
        results = dict(zip(cases, pool.map(run, cases.values())))
    return {"crops": crops, "tmp": tmp, **results}


@pytest.fixture(scope="module")
def serving(exported_saved_model):
    signature = tf.saved_model.load(str(exported_saved_model)).signatures[SERVING_SIGNATURE]
    return lambda paths: signature(**{BYTES_INPUT: tf.constant([p.read_bytes() for p in paths])})[OUTPUT].numpy()


def written(runs, name) -> np.lib.npyio.NpzFile:
    code, stdout, stderr, output = runs[name]
    assert code == 0, stderr[-3000:]
    assert f"embeddings  {output}" in stdout, stdout
    return np.load(output)


def test_a_folder_of_real_sized_crops_gives_serving_defaults_embeddings(runs, serving):
    crops = runs["crops"]
    archive = written(runs, "folder")
    assert sorted(archive.files) == ["embeddings", "paths"]
    assert archive["paths"].tolist() == [str(path) for path in crops]  # recursive, sorted, hidden and .txt left out
    reference = serving(crops)
    assert archive["embeddings"].dtype == np.float32 and archive["embeddings"].shape == (5, 64)
    assert row_cosines(archive["embeddings"], reference).min() >= 0.999
    np.testing.assert_allclose(archive["embeddings"], reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), np.sqrt(2), atol=1e-5)  # two unit-norm branches


def test_an_export_format_folder_and_normalize(runs, serving):
    crops = runs["crops"]
    archive = written(runs, "format folder, --normalize")
    assert archive["paths"].tolist() == [str(crops[0]), str(crops[4])]
    np.testing.assert_allclose(np.linalg.norm(archive["embeddings"], axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(archive["embeddings"], serving([crops[0], crops[4]]) / np.sqrt(2), atol=1e-5)


def test_a_data_set_split_keeps_ids_and_cameras(runs, tiny_synthetic, export_model):
    archive = written(runs, "data set split")
    query = tiny_synthetic.query
    assert archive["paths"].tolist() == query["path"].tolist()
    np.testing.assert_array_equal(archive["pids"], query["pid"].to_numpy())
    np.testing.assert_array_equal(archive["camids"], query["camid"].to_numpy())
    assert archive["pids"].dtype == archive["camids"].dtype == np.int64
    reference = KerasEmbedder(export_model).embed_files(query["path"].tolist())
    np.testing.assert_allclose(archive["embeddings"], reference, atol=1e-5)


# name -> what the one error line must hold
REFUSALS = {
    "an unreadable image": ("b_truncated.jpg: not a readable image (", "give JPEG, PNG, BMP, GIF or WebP images"),
    "an empty folder": ("empty: no image files (", "give a folder that holds images"),
    "a missing input": ("nothere: no such image file or folder",),
    "an unknown data set": ("unknown data set 'market1502'; expected one of",),
    "an unwritable output": (
        f"{UNWRITABLE}/out.npz: cannot be written (",
        f" in {UNWRITABLE}); choose another output path, or fix the permissions or free space there",
    ),
    "an output in /proc": ("/proc/x.npz: cannot be written (No such file or directory in /proc); choose another",),
    "a missing model": ("nomodel.keras: no such model file or folder",),
    "a folder that is no model": (
        "crops: a folder without saved_model.pb or manifest.json",
        "give a SavedModel version folder",
    ),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_refusal_is_one_line_naming_the_file_and_writes_nothing(runs, name):
    code, stdout, stderr, output = runs[name]
    assert code == 2 and "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0] == stderr.strip().splitlines()[-1], stderr[-3000:]
    assert errors[0].startswith("hacnn-tf embed: error: ")
    assert all(part in errors[0] for part in REFUSALS[name]), errors[0]
    assert not output.exists()
    assert not (output.parent.exists() and list(output.parent.glob(f".{output.stem}*")))  # no partial file
