"""Untrusted model files are scanned before anything of them runs: a SavedModel whose signature reads or writes
files (or calls a checkpoint or file op by name, or hides one in the restore function TF Serving runs at load time)
and an ONNX file with a custom-op domain, a contrib op or external data are refused, naming the op, where it sits and
the file; our own exports pass, and their op types are exactly the allow-list (an export that adds an op, or stops
using one, fails here, so the list cannot drift). `.keras` files keep Keras's safe mode."""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import onnx
import pytest
import tensorflow as tf
from onnx import TensorProto, helper
from tensorflow.core.protobuf import saved_model_pb2

from hacnn_tf.errors import UserError
from hacnn_tf.runtime import load_embedder
from hacnn_tf.security import (
    EARLIER_EXPORT_ONNX_OPS,
    EARLIER_EXPORT_SAVED_MODEL_OPS,
    LARGE_MAP_ONNX_OPS,
    LARGE_MAP_SAVED_MODEL_OPS,
    ONNX_OPS,
    RESTORE_OPS,
    SAVE_OPS,
    SAVED_MODEL_OPS,
    UntrustedModelError,
    saved_model_op_types,
    scan_onnx,
    scan_saved_model,
)
from hacnn_tf.tracking import ReIDEmbedder


def _saved_model_folders(exported_formats: dict) -> list[pathlib.Path]:
    folders = [exported_formats[f"saved_model-{precision}"] / "hacnn" / "1" for precision in ("fp32", "bf16", "fp16")]
    assert all((folder / "saved_model.pb").is_file() for folder in folders)
    return folders


@pytest.mark.slow  # every SavedModel precision and the ONNX export: `exported_formats`, minutes on 2 cores
def test_our_exports_pass_and_hold_exactly_the_allow_list(exported_formats) -> None:
    """Every SavedModel precision and the ONNX export: the scan passes, and the union of their op types is the
    allow-list, outside the saver and inside its save and restore functions."""
    outside, save, restore = set(), set(), set()
    for folder in _saved_model_folders(exported_formats):
        report = scan_saved_model(folder)
        for place, ops in report.op_types.items():
            role = report.roles.get(place, frozenset({"graph"}))
            (save if role == {"save"} else restore if role == {"restore"} else outside).update(ops)
        assert sorted(report.roles.values(), key=sorted).count(frozenset({"restore"})) == 1
    assert sorted(outside) == sorted(SAVED_MODEL_OPS - LARGE_MAP_SAVED_MODEL_OPS - EARLIER_EXPORT_SAVED_MODEL_OPS)
    assert sorted(save - outside) == sorted(SAVE_OPS)
    assert sorted(restore - outside) == sorted(RESTORE_OPS)
    onnx_report = scan_onnx(exported_formats["onnx-fp32"] / "hacnn.onnx")
    assert sorted(onnx_report.all_op_types) == sorted(ONNX_OPS - LARGE_MAP_ONNX_OPS - EARLIER_EXPORT_ONNX_OPS)


@pytest.mark.slow  # an export of a tiny model at 320 x 128 pixels, to SavedModel and ONNX
def test_a_large_input_export_adds_exactly_the_large_map_ops(tmp_path) -> None:
    """Above 256 x 128 pixels the spatial attention upsamples with an einsum: those exports pass the scan, and hold
    the allow-list's large-map ops on top of what the small model's exports hold."""
    from conftest import TINY_MODEL

    from hacnn_tf import HACNN
    from hacnn_tf.export import export_all

    keras.utils.set_random_seed(0)
    large = HACNN(None, **{**TINY_MODEL, "input_size": [320, 128]})
    folders = export_all(large, tmp_path / "large", ("saved_model-fp32", "onnx-fp32"))
    report = scan_saved_model(folders["saved_model-fp32"] / "hacnn" / "1")
    outside = set().union(
        *(ops for place, ops in report.op_types.items() if report.roles.get(place) not in ({"save"}, {"restore"}))
    )
    assert LARGE_MAP_SAVED_MODEL_OPS <= outside <= SAVED_MODEL_OPS - EARLIER_EXPORT_SAVED_MODEL_OPS, sorted(outside)
    onnx_ops = set(scan_onnx(folders["onnx-fp32"] / "hacnn.onnx").all_op_types)
    assert LARGE_MAP_ONNX_OPS <= onnx_ops <= ONNX_OPS - EARLIER_EXPORT_ONNX_OPS, sorted(onnx_ops)


def test_exports_of_earlier_versions_still_pass(tmp_path) -> None:
    """The ops only earlier exports hold (the Inception-A average pool) stay allowed: a SavedModel and an ONNX file
    holding them pass the scan."""
    module = tf.Module()
    module.embed = tf.function(
        lambda images: {"embedding": tf.reduce_mean(tf.nn.avg_pool2d(images, 3, 1, "VALID"), axis=[1, 2])},
        input_signature=[tf.TensorSpec((None, 8, 4, 3), tf.float32, "images")],
    )
    tf.saved_model.save(module, str(tmp_path / "model"), signatures={"embed_images": module.embed})
    report = scan_saved_model(tmp_path / "model")
    assert EARLIER_EXPORT_SAVED_MODEL_OPS <= set().union(*report.op_types.values())
    node = helper.make_node("AveragePool", ["images"], ["embedding"], kernel_shape=[3, 3])
    graph = helper.make_graph(
        [node],
        "pool",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 4])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 3, 6, 2])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "pool.onnx"))
    assert EARLIER_EXPORT_ONNX_OPS <= set(scan_onnx(tmp_path / "pool.onnx").all_op_types)


# The hostile model's input size: `(H, W)` pixels, as the loaders read it from its `embed_images` signature.
HOSTILE_SIZE = (8, 4)


class _Hostile(tf.Module):
    """A model whose signature reads a system file and writes a file: what any TensorFlow graph can do. It looks like
    our exports to the loaders (an `embed_images` signature taking `images` pixels and returning `embedding`)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    @tf.function(input_signature=[tf.TensorSpec((None, *HOSTILE_SIZE, 3), tf.float32, "images")])
    def embed(self, images):
        leaked = tf.io.read_file("/etc/hostname")
        written = tf.io.write_file(self.target, leaked)
        with tf.control_dependencies([written]):
            return {"embedding": tf.reduce_mean(images, axis=[1, 2]) * 2.0}


@pytest.fixture(scope="module")
def hostile_saved_model(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path]:
    """The hostile SavedModel folder (saved once for the module) and the file its signature writes; each test
    starts with that file absent."""
    folder = tmp_path_factory.mktemp("hostile")
    target = folder / "written-by-the-model.txt"
    module = _Hostile(str(target))
    tf.saved_model.save(module, str(folder / "model"), signatures={"embed_images": module.embed})
    assert not target.exists()
    return folder / "model", target


@pytest.fixture
def hostile(hostile_saved_model) -> tuple[pathlib.Path, pathlib.Path]:
    model, target = hostile_saved_model
    target.unlink(missing_ok=True)
    return model, target


def test_a_saved_model_that_writes_files_is_refused_without_running(hostile) -> None:
    model, target = hostile
    with pytest.raises(UntrustedModelError) as error:
        scan_saved_model(model)
    message = str(error.value)
    assert isinstance(error.value, UserError) and "\n" not in message
    assert message.startswith(f"{model / 'saved_model.pb'}: op ReadFile in function '__inference_embed_")
    assert "so the model was not loaded; 1 more: WriteFile in __inference_embed_" in message
    assert error.value.op == "ReadFile" and error.value.place.startswith("__inference_embed_")
    assert not target.exists()  # the scan ran nothing
    # What the scan prevents: loading and calling the signature writes the file.
    tf.saved_model.load(str(model)).signatures["embed_images"](images=tf.zeros((1, *HOSTILE_SIZE, 3)))
    assert target.read_bytes() == pathlib.Path("/etc/hostname").read_bytes()


def test_a_saved_model_that_writes_files_is_refused_by_the_loaders(hostile) -> None:
    """`load_embedder(dir)` and `ReIDEmbedder(dir)` scan the folder first (untrusted is the default for a path) and
    refuse it before any file is written; `trusted=True` loads it, and its first call writes the file."""
    model, target = hostile
    for load in (load_embedder, ReIDEmbedder):
        with pytest.raises(UntrustedModelError) as error:
            load(model)
        assert str(error.value).startswith(f"{model / 'saved_model.pb'}: op ReadFile in function '__inference_embed_")
        assert not target.exists()
    pixels = np.full((2, *HOSTILE_SIZE, 3), 100.0, np.float32)
    embedder = load_embedder(model, trusted=True)
    assert embedder.input_size == HOSTILE_SIZE and not target.exists()
    np.testing.assert_allclose(embedder(pixels), np.full((2, 3), 200.0))
    assert target.read_bytes() == pathlib.Path("/etc/hostname").read_bytes()
    target.unlink()
    tracker = ReIDEmbedder(model, trusted=True)
    frame = np.full((20, 10, 3), 100, np.uint8)
    np.testing.assert_allclose(
        tracker(frame, np.array([[0, 0, 10, 20]], np.float32)), np.full((1, 3), 200.0), atol=1e-3
    )
    assert target.exists()


def _edited_copy(source: pathlib.Path, target: pathlib.Path, edit) -> pathlib.Path:
    """A copy of the SavedModel folder `source` whose saved_model.pb went through `edit(meta_graph)`."""
    import shutil

    shutil.copytree(source, target)
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((target / "saved_model.pb").read_bytes())
    edit(saved_model.meta_graphs[0])
    (target / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    return target


def _function(meta_graph, prefix: str):
    return next(f for f in meta_graph.graph_def.library.function if f.signature.name.startswith(prefix))


def test_ops_hidden_in_the_restore_function_or_called_by_name_are_refused(exported_saved_model, tmp_path) -> None:
    """The restore function runs when TF Serving loads a version: a WriteFile there, a SaveV2 in a signature (a
    checkpoint op outside the saver) and a ReadFile run by name through a call's function attribute are refused."""
    source = exported_saved_model

    def write_in_restore(meta_graph):
        node = _function(meta_graph, "__inference__traced_restore_").node_def.add(name="leak", op="WriteFile")
        node.input.extend(["file_prefix", "file_prefix"])

    def save_in_signature(meta_graph):
        _function(meta_graph, "__inference_signature_wrapper_serve_").node_def.add(name="dump", op="SaveV2")

    def read_by_name(meta_graph):
        node = _function(meta_graph, "__inference_signature_wrapper_serve_").node_def.add(
            name="call", op="StatefulPartitionedCall"
        )
        node.attr["f"].func.name = "ReadFile"

    cases = {
        "write_in_restore": (write_in_restore, "WriteFile", "__inference__traced_restore_"),
        "save_in_signature": (save_in_signature, "SaveV2", "__inference_signature_wrapper_serve_"),
        "read_by_name": (read_by_name, "ReadFile", "__inference_signature_wrapper_serve_"),
    }
    for name, (edit, op, place) in cases.items():
        folder = _edited_copy(source, tmp_path / name, edit)
        with pytest.raises(UntrustedModelError) as error:
            scan_saved_model(folder)
        assert (error.value.op, error.value.place[: len(place)]) == (op, place), name
        assert str(error.value).startswith(f"{folder / 'saved_model.pb'}: op {op} in function '{place}"), name
    # The unedited copy passes: the restore function may hold RestoreV2, no other function may.
    assert "RestoreV2" in scan_saved_model(source).all_op_types


def test_other_graph_files_are_refused(exported_saved_model, tmp_path) -> None:
    """TensorFlow also reads saved_model.pbtxt / .cpb; our exports never write them, so the scan does not guess."""
    folder = _edited_copy(exported_saved_model, tmp_path / "copy", lambda meta_graph: None)
    (folder / "saved_model.pbtxt").write_text("")
    with pytest.raises(UntrustedModelError, match=r"saved_model.pbtxt: a SavedModel graph in a form hacnn-tf's "):
        saved_model_op_types(folder)


def _onnx_file(path: pathlib.Path, nodes: list, opsets: list, initializers: list = ()) -> pathlib.Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 4])],
        initializer=list(initializers),
    )
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Small ONNX files, written once for the module: one of standard ops, and hostile ones."""
    folder = tmp_path_factory.mktemp("onnx")
    standard = [helper.make_opsetid("", 17)]
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1, 4], np.zeros(4, np.float32))
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="../../../etc/hostname")
    return {
        "good": _onnx_file(folder / "good.onnx", [helper.make_node("Relu", ["images"], ["embedding"])], standard),
        "custom": _onnx_file(
            folder / "custom.onnx",
            [helper.make_node("Shell", ["images"], ["embedding"], name="run", domain="com.example")],
            [*standard, helper.make_opsetid("com.example", 1)],
        ),
        # a node of a domain the file does not even import
        "contrib": _onnx_file(
            folder / "contrib.onnx",
            [helper.make_node("Gelu", ["images"], ["embedding"], name="gelu", domain="com.microsoft")],
            standard,
        ),
        "outside": _onnx_file(
            folder / "outside.onnx", [helper.make_node("Softmax", ["images"], ["embedding"])], standard
        ),
        "external": _onnx_file(
            folder / "external.onnx", [helper.make_node("Add", ["images", "w"], ["embedding"])], standard, [weight]
        ),
    }


def test_onnx_custom_domains_contrib_ops_and_external_data_are_refused(onnx_files) -> None:
    assert scan_onnx(onnx_files["good"]).all_op_types == {"Relu"}
    custom = onnx_files["custom"]
    with pytest.raises(UntrustedModelError) as error:
        scan_onnx(custom)
    assert str(error.value) == (
        f"{custom}: opset domain 'com.example' in the model's opset imports is a custom-op "
        f"domain, which hacnn-tf's exports never import, so the model was not loaded"
    )
    with pytest.raises(
        UntrustedModelError,
        match=r"op com.microsoft::Gelu \(node 'gelu'\) in the graph is in the "
        r"custom-op domain 'com.microsoft'",
    ):
        scan_onnx(onnx_files["contrib"])
    with pytest.raises(UntrustedModelError, match=r"op Softmax \(node ''\) in the graph is not one hacnn-tf's ONNX"):
        scan_onnx(onnx_files["outside"])
    with pytest.raises(
        UntrustedModelError,
        match=r"tensor 'w' in the graph keeps its data in the external file "
        r"'../../../etc/hostname', which ONNX Runtime would open",
    ):
        scan_onnx(onnx_files["external"])


def test_load_embedder_scans_onnx_files_unless_trusted(onnx_files) -> None:
    """Each hostile file is refused by `load_embedder` with the scan's message, before ONNX Runtime opens it; the
    file of standard ops passes the scan (and is then refused by `ONNXEmbedder`: it takes no images)."""
    for name in ("custom", "contrib", "outside", "external"):
        with pytest.raises(UntrustedModelError) as scanned:
            scan_onnx(onnx_files[name])
        with pytest.raises(UntrustedModelError) as loaded:
            load_embedder(onnx_files[name])
        assert str(loaded.value) == str(scanned.value), name
    with pytest.raises(ValueError, match=r"good.onnx: input 'images' has shape \[1, 4\]; expected"):
        load_embedder(onnx_files["good"])
    with pytest.raises(Exception, match=r"com.example") as trusted:  # trusted: ONNX Runtime itself refuses it
        load_embedder(onnx_files["custom"], trusted=True)
    assert not isinstance(trusted.value, UntrustedModelError)


def test_keras_files_keep_safe_mode(tmp_path) -> None:
    """A `.keras` file with a Lambda layer (Python bytecode) is refused by load_embedder; its code never runs."""
    marker = tmp_path / "lambda-ran"
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x, m=str(marker): (open(m, "w").close(), x)[1])(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink(missing_ok=True)  # tracing the layer while building ran it once
    with pytest.raises(ValueError, match=r"deserialization of a `Lambda` layer.*safe_mode"):
        load_embedder(path)
    assert not marker.exists()
