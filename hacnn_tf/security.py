"""Untrusted model files: a scan of the operations a SavedModel folder or an ONNX file holds, refused where they
leave the set that hacnn-tf's own exports contain, before anything of the file runs.

A SavedModel is a program: its graph and the functions of its library are TensorFlow ops, and ops such as
`ReadFile`, `WriteFile`, `MatchingFiles`, `PrintV2` (which writes to a file it names), `ImmutableConst` (which maps
a file) or `SaveV2` read and write files with the rights of the process that runs a signature, and TF Serving's
session loader runs the restore op as soon as it loads a version. Model-file security scanners (ModelScan,
`saved_model_cli scan`) list the op types of every meta graph and library function and flag such ops; this scan
does the same with an allow-list instead of a deny-list: every op type must be one that an `export_saved_model`
export (any precision) contains, and the checkpoint ops only where the loaders' own save and restore put them (the
functions that `saver_def`'s restore op and save tensor call, and no other). A function attribute naming something
that is not a library function runs that op by name: it counts as an op of the place that names it.

An ONNX file is data for the runtime's own kernels, except for nodes of other domains (custom ops, which a
runtime resolves from libraries registered with it, or ONNX Runtime's contrib ops) and tensors whose data lie in
external files that the runtime opens by a path the file names. The scan refuses nodes and opset imports outside
the standard domains, op types outside those of a `convert_onnx` export, model-local functions and external data.

What the scan does not cover: ops that are allowed but fed hostile values (image decoders given malformed bytes,
shapes that exhaust memory), the weights' values, TFLite and OpenVINO files, and anything a caller runs outside
these files.
A scan that passes does not make an artefact trusted: it only says that it holds nothing but what our exports hold.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
from collections.abc import Iterator, Mapping

from hacnn_tf.errors import UserError

__all__ = [
    "EARLIER_EXPORT_ONNX_OPS",
    "EARLIER_EXPORT_SAVED_MODEL_OPS",
    "LARGE_MAP_ONNX_OPS",
    "LARGE_MAP_SAVED_MODEL_OPS",
    "ONNX_DOMAINS",
    "ONNX_OPS",
    "RESTORE_OPS",
    "SAVED_MODEL_OPS",
    "SAVE_OPS",
    "ModelScanReport",
    "UntrustedModelError",
    "onnx_op_types",
    "saved_model_op_types",
    "scan_onnx",
    "scan_saved_model",
]

# The op types of `export_saved_model`'s graphs and functions outside the saver (fp32, bf16 and fp16 exports of the
# model with and without local branches, with either sampler convention and with built-in preprocessing);
# tests/reliability/test_untrusted_models.py fails when an export holds one that is not here, or no longer holds one
# that is. `LARGE_MAP_SAVED_MODEL_OPS` are held only by models whose input exceeds 256 x 128 pixels (the spatial
# attention upsamples a map over `MAX_UPSAMPLE_MATRIX_ELEMENTS` one axis at a time, with an einsum).
LARGE_MAP_SAVED_MODEL_OPS = frozenset({"Einsum"})
# Held by the exports of hacnn-tf before its Inception-A average pool became a depthwise convolution; allowed, so that
# those exports still load, and held by none of today's.
EARLIER_EXPORT_SAVED_MODEL_OPS = frozenset({"AvgPool"})
SAVED_MODEL_OPS = frozenset(
    {
        "Abs",
        "AddV2",
        "All",
        "Any",
        "Assert",
        "AvgPool",
        "BatchMatMulV2",
        "BiasAdd",
        "Cast",
        "Ceil",
        "CheckNumerics",
        "ConcatV2",
        "Const",
        "Conv2D",
        "DecodeBmp",
        "DecodeImage",
        "DecodeRaw",
        "DepthwiseConv2dNative",
        "Einsum",
        "EnsureShape",
        "Equal",
        "ExpandDims",
        "ExtractJpegShape",
        "Fill",
        "Floor",
        "FloorDiv",
        "FloorMod",
        "GatherNd",
        "GatherV2",
        "Greater",
        "GreaterEqual",
        "Identity",
        "If",
        "IsFinite",
        "Less",
        "LessEqual",
        "LogicalAnd",
        "LogicalNot",
        "MatMul",
        "MaxPool",
        "Maximum",
        "Mean",
        "Minimum",
        "Mul",
        "NoOp",
        "Pack",
        "Pad",
        "PartitionedCall",
        "Placeholder",
        "Pow",
        "Prod",
        "Range",
        "RealDiv",
        "Relu",
        "Reshape",
        "ReverseV2",
        "Rsqrt",
        "ScaleAndTranslate",
        "ScatterNd",
        "SelectV2",
        "Shape",
        "Sigmoid",
        "Size",
        "Square",
        "Squeeze",
        "StatefulPartitionedCall",
        "StatelessIf",
        "StatelessWhile",
        "StridedSlice",
        "StringJoin",
        "StringLength",
        "Sub",
        "Substr",
        "Sum",
        "Tanh",
        "TensorListConcatV2",
        "TensorListFromTensor",
        "TensorListGetItem",
        "TensorListReserve",
        "TensorListSetItem",
        "TensorListStack",
        "Tile",
        "Transpose",
        "Unpack",
        "Where",
        "While",
        "ZerosLike",
    }
)
# What the saver's functions hold beyond those: the save function writes the checkpoint (run by a TF1 `Saver.save`,
# never by the loaders); the restore function reads it (TF Serving's session loader runs it at load time, with the
# version's `variables/variables` as the file).
SAVE_OPS = frozenset({"MergeV2Checkpoints", "SaveV2", "Select", "ShardedFilename", "StaticRegexFullMatch"})
RESTORE_OPS = frozenset({"RestoreV2"})
# The files a SavedModel folder may describe its graph with; TensorFlow also reads `saved_model.pbtxt` (text) and
# `saved_model.cpb` (chunked), which our exports never write: a folder holding them is refused rather than guessing
# which one a loader picks.
_SAVED_MODEL_FILE = "saved_model.pb"
_OTHER_SAVED_MODEL_FILES = ("saved_model.pbtxt", "saved_model.cpb")
_TOP_LEVEL = "the top-level graph"

# ONNX: the standard domains ("" and "ai.onnx" are the same), and the ONNX-ML domain tf2onnx imports without using
# it; the op types of `convert_onnx`'s export of the same models (`LARGE_MAP_ONNX_OPS`: the large-input einsum).
ONNX_DOMAINS = frozenset({"", "ai.onnx"})
_ONNX_OPSET_DOMAINS = ONNX_DOMAINS | {"ai.onnx.ml"}
LARGE_MAP_ONNX_OPS = frozenset({"Gemm"})
EARLIER_EXPORT_ONNX_OPS = frozenset({"AveragePool"})
ONNX_OPS = frozenset(
    {
        "Abs",
        "Add",
        "AveragePool",
        "Cast",
        "Concat",
        "Conv",
        "Gather",
        "Gemm",
        "GlobalAveragePool",
        "MatMul",
        "Max",
        "MaxPool",
        "Mul",
        "Pad",
        "Reciprocal",
        "ReduceMean",
        "ReduceSum",
        "Relu",
        "Reshape",
        "Shape",
        "Sigmoid",
        "Slice",
        "Sqrt",
        "Squeeze",
        "Sub",
        "Tanh",
        "Transpose",
        "Unsqueeze",
    }
)


class UntrustedModelError(UserError, ValueError):
    """A model file holding what hacnn-tf's exports never hold (an op outside the allow-list, a custom-op domain,
    external data): it was not loaded. `path` is the file, `op` the op type (or domain / tensor) and `place` the
    function or graph it sits in."""

    def __init__(self, message: str, path: pathlib.Path, op: str, place: str) -> None:
        super().__init__(message)
        self.path, self.op, self.place = path, op, place


@dataclasses.dataclass(frozen=True)
class ModelScanReport:
    """The op types of a model file, by place: `{place: op types}`, a place being `"the top-level graph"` or a
    function's name (SavedModel), `"the graph"`, a subgraph or a function (ONNX); `roles` says, per SavedModel
    function, who calls it (`"restore"`, `"save"`, `"graph"`: a signature, another top-level node, or nobody)."""

    path: pathlib.Path
    op_types: Mapping[str, frozenset[str]]
    roles: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    @property
    def all_op_types(self) -> frozenset[str]:
        """Every op type of the file."""
        return frozenset().union(*self.op_types.values())


def saved_model_op_types(path: str | os.PathLike) -> ModelScanReport:
    """The op types of the SavedModel folder `path` (its `saved_model.pb`), by place, and the saver role of each
    library function, read from the protocol buffer without loading or running anything.

    Raises:
        UntrustedModelError: the folder holds `saved_model.pbtxt` or `saved_model.cpb` (files our exports never
            write) or no `saved_model.pb`.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    folder = pathlib.Path(path)
    graph_file = folder / _SAVED_MODEL_FILE
    for other in _OTHER_SAVED_MODEL_FILES:
        if (folder / other).exists():
            raise UntrustedModelError(
                f"{folder / other}: a SavedModel graph in a form hacnn-tf's exports never write "
                f"(they write {_SAVED_MODEL_FILE} alone); refusing the folder",
                folder / other,
                other,
                "the folder",
            )
    if not graph_file.is_file():
        raise UntrustedModelError(
            f"{folder}: no {_SAVED_MODEL_FILE}; not a SavedModel folder", graph_file, _SAVED_MODEL_FILE, "the folder"
        )
    saved_model = _parsed(
        graph_file, "SavedModel", lambda: saved_model_pb2.SavedModel.FromString(graph_file.read_bytes())
    )
    op_types: dict[str, set[str]] = collections.defaultdict(set)
    roles: dict[str, set[str]] = collections.defaultdict(set)
    for index, meta_graph in enumerate(saved_model.meta_graphs):
        prefix = "" if len(saved_model.meta_graphs) == 1 else f"meta graph {index}: "
        library = {function.signature.name: function for function in meta_graph.graph_def.library.function}
        saver = meta_graph.saver_def
        saver_nodes = {_node_name(saver.restore_op_name): "restore", _node_name(saver.save_tensor_name): "save"}
        pending: list[tuple[str, str]] = []
        for node in meta_graph.graph_def.node:
            role = saver_nodes.get(node.name, "graph")
            pending += [(callee, role) for callee in _callees(node, library, op_types[prefix + _TOP_LEVEL])]
        while pending:
            name, role = pending.pop()
            if role not in roles[prefix + name]:
                roles[prefix + name].add(role)
                for node in library[name].node_def:
                    pending += [(callee, role) for callee in _callees(node, library, op_types[prefix + name])]
            if not pending:  # functions nobody calls are scanned as if the graph called them
                pending = [(other, "graph") for other in library if not roles[prefix + other]]
    return ModelScanReport(
        graph_file,
        {place: frozenset(ops) for place, ops in op_types.items()},
        {name: frozenset(found) for name, found in roles.items()},
    )


def scan_saved_model(path: str | os.PathLike) -> ModelScanReport:
    """`saved_model_op_types(path)`, refused unless every op type is one our exports hold where they hold it.

    Args:
        path: a SavedModel folder (a TF Serving version folder).

    Returns:
        The report (op types by place), when the scan passes.

    Raises:
        UntrustedModelError: one line naming the op, the function (or the top-level graph) it sits in and the file,
            and how many other refused ops there are; nothing of the model has run.

    Example:
        >>> scan_saved_model("OUT/saved_model-fp32/hacnn/1").all_op_types <= SAVED_MODEL_OPS | SAVE_OPS | RESTORE_OPS
        True
    """
    report = saved_model_op_types(path)
    refused = []
    for place, ops in sorted(report.op_types.items()):
        allowed = SAVED_MODEL_OPS
        role = report.roles.get(place, frozenset())
        if role == {"save"}:
            allowed = allowed | SAVE_OPS
        elif role == {"restore"}:
            allowed = allowed | RESTORE_OPS
        refused += [(op, place) for op in sorted(ops - allowed)]
    if refused:
        (op, place), others = refused[0], refused[1:]
        where = place if place.endswith(_TOP_LEVEL) else f"function {place!r}"
        more = f"; {len(others)} more: {', '.join(f'{o} in {p}' for o, p in others[:4])}" if others else ""
        if len(others) > 4:
            more += ", ..."
        raise UntrustedModelError(
            f"{report.path}: op {op} in {where} is not one hacnn-tf's exports hold there (file, Python, network "
            f"or system ops, or checkpoint ops outside the loader's restore), so the model was not loaded{more}",
            report.path,
            op,
            place,
        )
    return report


def _parsed(path: pathlib.Path, kind: str, parse):
    """`parse()`, or an `UntrustedModelError` naming `path` when its bytes are no protocol buffer of `kind` (a
    truncated file, another file under the name)."""
    from google.protobuf.message import DecodeError

    try:
        return parse()
    except DecodeError as error:
        raise UntrustedModelError(
            f"{path}: not a readable {kind} model ({error}); the file is truncated or not a model: export it again "
            "with hacnn-tf export",
            path,
            "the file",
            "the file",
        ) from None


def onnx_op_types(path: str | os.PathLike) -> ModelScanReport:
    """The `domain::op_type` names (`op_type` alone in the standard domain) of the ONNX file `path`, by place: the
    graph, each subgraph of a node attribute (`"graph/<node>/<attribute>"`) and each model-local function, read
    without the file's external data."""
    import onnx

    model = _parsed(pathlib.Path(path), "ONNX", lambda: onnx.load(str(path), load_external_data=False))
    op_types: dict[str, set[str]] = {}
    for place, nodes in _onnx_node_lists(model):
        op_types.setdefault(place, set()).update(_onnx_op_name(node) for node in nodes)
    return ModelScanReport(pathlib.Path(path), {place: frozenset(ops) for place, ops in op_types.items()})


def scan_onnx(path: str | os.PathLike) -> ModelScanReport:
    """`onnx_op_types(path)`, refused where the file imports or uses a domain other than the standard ones (custom
    ops, ONNX Runtime's contrib ops), uses an op type outside `ONNX_OPS`, defines model-local functions, or keeps a
    tensor's data in an external file.

    Raises:
        UntrustedModelError: one line naming the op (domain, tensor), where it sits and the file.
    """
    import onnx

    path = pathlib.Path(path)
    model = _parsed(path, "ONNX", lambda: onnx.load(str(path), load_external_data=False))

    def refuse(what: str, place: str, why: str) -> UntrustedModelError:
        return UntrustedModelError(f"{path}: {what} in {place} {why}, so the model was not loaded", path, what, place)

    for opset in model.opset_import:
        if opset.domain not in _ONNX_OPSET_DOMAINS:
            raise refuse(
                f"opset domain {opset.domain!r}",
                "the model's opset imports",
                "is a custom-op domain, which hacnn-tf's exports never import",
            )
    for function in model.functions:
        raise refuse(
            f"function {function.domain}::{function.name}",
            "the model's functions",
            "is a model-local function, which hacnn-tf's exports never define",
        )
    for place, nodes in _onnx_node_lists(model):
        for node in nodes:
            if node.domain not in ONNX_DOMAINS:
                raise refuse(
                    f"op {_onnx_op_name(node)} (node {node.name!r})",
                    place,
                    f"is in the custom-op domain {node.domain!r}, which hacnn-tf's exports never use",
                )
            if node.op_type not in ONNX_OPS:
                raise refuse(
                    f"op {node.op_type} (node {node.name!r})", place, "is not one hacnn-tf's ONNX exports hold"
                )
    for place, tensor in _onnx_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
            raise refuse(
                f"tensor {tensor.name!r}",
                place,
                f"keeps its data in the external file {location!r}, which ONNX Runtime would open; "
                "hacnn-tf's exports keep their weights inside the .onnx file",
            )
    return onnx_op_types(path)


def _node_name(tensor_or_op: str) -> str:
    """`"name"` of `"name:0"` or `"^name"`."""
    return tensor_or_op.lstrip("^").split(":")[0]


def _callees(node, library: Mapping[str, object], ops: set[str]) -> list[str]:
    """The library functions `node` calls (by its op, or by function attributes); its op type, and the names of
    attributes' functions that are not library functions (ops run by name), go into `ops`."""
    callees = []
    if node.op in library:
        callees.append(node.op)
    else:
        ops.add(node.op)
    for attr in node.attr.values():
        for name in _attr_functions(attr):
            if name in library:
                callees.append(name)
            else:
                ops.add(name)
    return callees


def _attr_functions(attr) -> Iterator[str]:
    """The function names an `AttrValue` holds (`func`, `list.func`, and those nested in their attributes)."""
    functions = [attr.func] if attr.HasField("func") else []
    functions += list(attr.list.func)
    for function in functions:
        yield function.name
        for nested in function.attr.values():
            yield from _attr_functions(nested)


def _onnx_op_name(node) -> str:
    return node.op_type if node.domain in ONNX_DOMAINS else f"{node.domain}::{node.op_type}"


def _onnx_graphs(graph, place: str) -> Iterator[tuple[str, object]]:
    """`graph` and every subgraph of its nodes' attributes, with their places."""
    import onnx

    yield place, graph
    for node in graph.node:
        for attr in node.attribute:
            subgraphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for subgraph in subgraphs:
                yield from _onnx_graphs(subgraph, f"{place}/{node.name or node.op_type}/{attr.name}")


def _onnx_node_lists(model) -> Iterator[tuple[str, list]]:
    for place, graph in _onnx_graphs(model.graph, "the graph"):
        yield place, list(graph.node)
    for function in model.functions:
        yield f"function {function.domain}::{function.name}", list(function.node)


def _onnx_tensors(model) -> Iterator[tuple[str, object]]:
    """Every tensor of the model's graphs: initializers, sparse initializers' parts and node attributes' tensors."""
    import onnx

    for place, graph in _onnx_graphs(model.graph, "the graph"):
        for tensor in graph.initializer:
            yield place, tensor
        for sparse in graph.sparse_initializer:
            yield place, sparse.values
            yield place, sparse.indices
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    yield place, attr.t
                elif attr.type == onnx.AttributeProto.SPARSE_TENSOR:
                    yield place, attr.sparse_tensor.values
                    yield place, attr.sparse_tensor.indices
                for tensor in attr.tensors:
                    yield place, tensor
                for sparse in attr.sparse_tensors:
                    yield place, sparse.values
                    yield place, sparse.indices
