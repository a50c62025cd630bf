"""Exported format folders are checked against their manifest.json before a model of them runs: `load_embedder` and
`ReIDEmbedder` refuse a folder in which a file changed (64 flipped bytes of a weight), is missing or was added, whose
manifest names a path outside it, or that holds a symbolic link leading out of it, naming the file; `verify=False`
loads it anyway, and then the flipped weights give finite embeddings far from the exported model's (what the check
prevents). `hacnn-tf verify` does the same for the deployment step: one line per format, exit 2 naming the file."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import onnx
import pytest

from hacnn_tf.cli import main as hacnn_tf_main
from hacnn_tf.errors import ManifestError, UserError
from hacnn_tf.manifest import MANIFEST, manifest_folder, sha256_of, verify_manifest
from hacnn_tf.runtime import load_embedder
from hacnn_tf.tracking import ReIDEmbedder

FLIPPED = 64


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.default_rng(11).uniform(0, 255, (6, 64, 32, 3)).astype("float32")


@pytest.fixture
def copies(exported_formats, tmp_path) -> pathlib.Path:
    """An export folder holding copies of the tflite-fp32, onnx-fp32 and saved_model-fp32 format folders."""
    for name in ("tflite-fp32", "onnx-fp32", "saved_model-fp32"):
        shutil.copytree(exported_formats[name], tmp_path / "out" / name)
    return tmp_path / "out"


def _flip_weights(path: pathlib.Path) -> None:
    """Inverts `FLIPPED` bytes of a weight in the middle of the model file (inside the largest convolution kernel of
    an ONNX file, so that its protocol buffer still parses)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    if path.suffix == ".onnx":
        graph = onnx.load(str(path)).graph
        kernels = {node.input[1] for node in graph.node if node.op_type == "Conv"}
        kernel = max((t.raw_data for t in graph.initializer if t.name in kernels), key=len)
        middle = bytes(data).index(kernel) + len(kernel) // 2
    data[middle : middle + FLIPPED] = bytes(byte ^ 0xFF for byte in data[middle : middle + FLIPPED])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name, file", [("tflite-fp32", "hacnn.tflite"), ("onnx-fp32", "hacnn.onnx")])
def test_a_flipped_weight_is_refused_naming_the_file(copies, pixels, name, file) -> None:
    folder = copies / name
    exported = load_embedder(folder)(pixels)  # the intact copy passes (a format folder loads the model it names)
    _flip_weights(folder / file)
    for load, path in ((load_embedder, folder / file), (ReIDEmbedder, folder / file), (load_embedder, folder)):
        with pytest.raises(ManifestError) as error:
            load(path)
        message = str(error.value)
        assert isinstance(error.value, UserError) and "\n" not in message
        assert message.startswith(
            f"{folder / file}: changed since the export, its sha256 is not the manifest's "
            f"(against {folder / MANIFEST}: changed ['{file}']); copy the format folder"
        )
    # What the check prevents: the runtime loads the file and returns finite, wrong embeddings.
    flipped = load_embedder(folder / file, verify=False)(pixels)
    assert np.isfinite(flipped).all() and np.abs(flipped - exported).max() > 1e-3  # float32 noise: 0


def test_a_saved_model_version_folder_is_verified_with_its_format_folder(copies, exported_formats) -> None:
    """`saved_model-fp32/hacnn/1` lies two folders below its manifest: a changed variables file, a removed warm-up
    record and an added file are each named, by `load_embedder` and `ReIDEmbedder` alike."""
    folder = copies / "saved_model-fp32"
    version = folder / "hacnn" / "1"
    assert manifest_folder(version) == folder and manifest_folder(version / "saved_model.pb") == folder
    data = next((version / "variables").glob("variables.data-*"))
    original = exported_formats["saved_model-fp32"] / data.relative_to(folder)
    _flip_weights(data)
    with pytest.raises(ManifestError, match=rf"^{data}: changed since the export"):
        load_embedder(version)
    shutil.copy(original, data)
    warmup = version / "assets.extra" / "tf_serving_warmup_requests"
    warmup.rename(folder / "warmup")
    with pytest.raises(ManifestError) as error:
        ReIDEmbedder(version)
    assert str(error.value).startswith(
        f"{warmup}: listed in the manifest but missing (against {folder / MANIFEST}: "
        "missing ['hacnn/1/assets.extra/tf_serving_warmup_requests']; unlisted "
        "['warmup'])"
    )
    (folder / "warmup").rename(warmup)
    (folder / "hacnn" / "notes.txt").write_text("added")
    with pytest.raises(
        ManifestError,
        match=rf"^{folder / 'hacnn' / 'notes.txt'}: added to the folder after the "
        r"export \(against .*: unlisted \['hacnn/notes.txt'\]\)",
    ):
        load_embedder(version)
    (folder / "hacnn" / "notes.txt").unlink()
    assert load_embedder(version).input_size == (64, 32)  # the folder matches its manifest again


def test_paths_and_links_leaving_the_folder_are_refused(copies, tmp_path) -> None:
    """A manifest listing an absolute or `..` path (or naming such a model), and a symbolic link to a file outside
    the folder, refuse the folder before any file is read through them."""
    folder = copies / "tflite-fp32"
    manifest = json.loads((folder / MANIFEST).read_text())
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"secret")
    for edit, named in (
        ({"files": {**manifest["files"], "/etc/hostname": "0" * 64}}, "'/etc/hostname'"),
        ({"files": {**manifest["files"], "../outside.bin": "0" * 64}}, "'../outside.bin'"),
        ({"model": "../onnx-fp32/hacnn.onnx"}, "'../onnx-fp32/hacnn.onnx'"),
    ):
        (folder / MANIFEST).write_text(json.dumps({**manifest, **edit}))
        with pytest.raises(ManifestError) as error:
            load_embedder(folder / "hacnn.tflite")
        assert str(error.value) == (
            f"{folder / MANIFEST} names {named}, a path outside {folder} (absolute, or with "
            "'..'): refusing the folder; export again"
        )
    (folder / MANIFEST).write_text(json.dumps(manifest))
    verify_manifest(folder)
    (folder / "hacnn.tflite").rename(tmp_path / "hacnn.tflite")
    (folder / "hacnn.tflite").symlink_to(tmp_path / "hacnn.tflite")  # the right bytes, but outside the folder
    with pytest.raises(ManifestError) as error:
        load_embedder(folder / "hacnn.tflite")
    assert str(error.value) == (
        f"{folder / 'hacnn.tflite'}: a symbolic link to {tmp_path / 'hacnn.tflite'}, "
        f"outside {folder}: refusing the folder (copy the files themselves into it)"
    )
    (folder / "hacnn.tflite").unlink()
    (folder / "hacnn.tflite").symlink_to(folder / MANIFEST)  # a link inside the folder is followed and hashed
    with pytest.raises(ManifestError, match=r": changed since the export"):
        verify_manifest(folder)


def test_hacnn_tf_verify_prints_a_line_per_format_and_names_the_changed_file(copies, capsys) -> None:
    assert hacnn_tf_main(["verify", str(copies)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        f"verified {copies / name}" for name in ("onnx-fp32", "saved_model-fp32", "tflite-fp32")
    ]
    assert lines[0].endswith("hacnn.onnx: 26 op types, all of hacnn-tf's exports")
    assert lines[2].endswith("hacnn.tflite: not scanned (the scan reads SavedModel and ONNX files)")
    digest = sha256_of(copies / "onnx-fp32" / MANIFEST)
    assert f"{MANIFEST} (sha256 {digest}) matches its 1 file;" in lines[0]
    _flip_weights(copies / "tflite-fp32" / "hacnn.tflite")
    with pytest.raises(SystemExit) as exit_:
        hacnn_tf_main(["verify", str(copies), "tflite-fp32", "onnx-fp32"])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out.splitlines() == [lines[0]]  # onnx-fp32 passes, tflite-fp32 fails
    assert err.splitlines() == [
        f"hacnn-tf verify: error: {copies / 'tflite-fp32' / 'hacnn.tflite'}: changed since "
        f"the export, its sha256 is not the manifest's (against "
        f"{copies / 'tflite-fp32' / MANIFEST}: changed ['hacnn.tflite']); copy the format "
        "folder again from the export, or export again"
    ]
    with pytest.raises(SystemExit) as exit_:
        hacnn_tf_main(["verify", str(copies), "tflite-fp16"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith(f"hacnn-tf verify: error: {copies / 'tflite-fp16' / MANIFEST}: not found")
