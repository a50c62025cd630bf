"""`export_all`: one folder per format with a manifest (sha256 of every file), parity-checked against the Keras model
before the folder appears."""

import json
import shutil

import numpy as np
import pytest
from conftest import EXPORT_ALL_FORMATS

from hacnn_tf.export import all as export_all_module
from hacnn_tf.export import export_all, verify_manifest
from hacnn_tf.io_utils import exclusive_lock
from hacnn_tf.manifest import MANIFEST, sha256_of
from hacnn_tf.runtime import load_embedder
from hacnn_tf.runtime.keras_model import KerasEmbedder


def test_each_format_has_its_folder_and_manifest(exported_formats, export_model):
    assert set(exported_formats) == set(EXPORT_ALL_FORMATS)
    out = next(iter(exported_formats.values())).parent
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPORT_ALL_FORMATS)  # no staging folder left
    pixels = np.random.default_rng(11).uniform(0, 255, size=(3, 64, 32, 3)).astype("float32")
    reference = KerasEmbedder(export_model)(pixels)
    for name, folder in exported_formats.items():
        manifest = verify_manifest(folder)
        assert (manifest["format"], manifest["precision"]) == tuple(name.split("-"))
        assert any(f == manifest["model"] or f.startswith(manifest["model"] + "/") for f in manifest["files"])
        assert manifest["input"]["images"]["dtype"] == "float32"
        assert manifest["input"]["images"]["shape"] == [1 if name.startswith("tflite") else -1, 64, 32, 3]
        assert manifest["input"]["output"]["embedding"]["shape"][1:] == [64]
        assert manifest["exporters"]["tensorflow"] and manifest["exporters"]["hacnn-tf"]
        assert manifest["notes"]["parity"]["images"] == 16 and name in manifest["notes"]["parity"]
    # The manifest names what to load (the SavedModel, ONNX and OpenVINO files are read in their own tests).
    for name in ("tflite-fp32", "tflite-fp16"):
        manifest = verify_manifest(exported_formats[name])
        embedding = load_embedder(exported_formats[name] / manifest["model"])(pixels)
        assert np.abs(embedding - reference).max() < 1e-3, name
    assert exported_formats["onnx-fp32"].joinpath(MANIFEST).is_file()
    manifest = json.loads((exported_formats["onnx-fp32"] / MANIFEST).read_text())
    assert manifest["files"]["hacnn.onnx"] == sha256_of(exported_formats["onnx-fp32"] / "hacnn.onnx")
    assert manifest["exporters"]["tf2onnx"] and manifest["notes"]["opset"] == 17
    saved_model = json.loads((exported_formats["saved_model-fp32"] / MANIFEST).read_text())
    assert "hacnn/1/saved_model.pb" in saved_model["files"] and saved_model["input"]["image_bytes"]["dtype"] == "string"


def test_manifest_catches_changed_missing_and_added_files(exported_formats, tmp_path):
    folder = shutil.copytree(exported_formats["tflite-fp32"], tmp_path / "copy")
    verify_manifest(folder)
    with open(folder / "hacnn.tflite", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\0")
    (folder / "extra.txt").write_text("x")
    with pytest.raises(ValueError, match=r"unlisted \['extra.txt'\]; changed \['hacnn.tflite'\]"):
        verify_manifest(folder)
    (folder / "hacnn.tflite").unlink()
    with pytest.raises(ValueError, match=r"missing \['hacnn.tflite'\]"):
        verify_manifest(folder)


def test_a_format_that_misses_its_target_is_not_written(export_model, exported_saved_model, tmp_path, monkeypatch):
    monkeypatch.setitem(export_all_module.TARGETS, "saved_model-fp32", (0.0, 1.5))  # a cosine above 1: a miss
    with pytest.raises(RuntimeError, match=r"\['saved_model-fp32'\] missed their parity targets"):
        export_all(export_model, tmp_path, ["saved_model-fp32"], saved_model=exported_saved_model)
    assert not list(tmp_path.iterdir())


def test_arguments_are_checked_before_anything_is_written(export_model, exported_formats, tmp_path):
    with pytest.raises(ValueError, match="unknown formats"):
        export_all(export_model, tmp_path, ["onnx-fp16"])
    with pytest.raises(ValueError, match="tflite-int8, openvino-int8 need calibration_images"):
        export_all(export_model, tmp_path, ["tflite-int8", "onnx-fp32", "openvino-int8"])
    with pytest.raises(FileExistsError, match="onnx-fp32"):
        export_all(export_model, exported_formats["onnx-fp32"].parent, ["onnx-fp32"])
    assert not list(tmp_path.iterdir())


def test_a_second_export_into_a_folder_is_refused_and_a_killed_ones_staging_is_removed(
    export_model, tmp_path, monkeypatch
):
    """Two exports into one folder once both converted for minutes, then the second failed renaming onto the
    first's folders; a killed export's staging folder stayed for good."""
    with exclusive_lock(tmp_path):  # another export, running
        with pytest.raises(BlockingIOError, match=f"{tmp_path}: another export is writing into it"):
            export_all(export_model, tmp_path, ["onnx-fp32"])
    assert not list(tmp_path.iterdir())
    killed = tmp_path / f"{export_all_module.STAGING_PREFIX}killed" / "tflite-fp32"
    killed.mkdir(parents=True)
    (killed / "hacnn.tflite").write_bytes(b"half a file")
    seen = []

    def export_locked(model, out_dir, *args):
        seen.append(list(out_dir.iterdir()))
        with pytest.raises(RuntimeError, match="is locked"):  # this export holds the folder's lock meanwhile
            with exclusive_lock(out_dir):
                pass
        return {}

    monkeypatch.setattr(export_all_module, "_export_locked", export_locked)
    assert export_all(export_model, tmp_path, ["onnx-fp32"]) == {} and seen == [[]]
