"""Where the exported SavedModel's inference time goes, under TF Serving's own loader.

`python -m benchmarks.profile_ops --batch 1` exports the paper-sized model (random weights; `--saved-model DIR` reads
an `export_saved_model` version folder instead), loads it into a TF1 session as TF Serving and `saved_model_cli run`
do (`tf.compat.v1.saved_model.loader.load`, intra-op and inter-op threads as `--tensorflow_intra_op_parallelism` and
`--tensorflow_inter_op_parallelism` set them), and runs its `embed_images` signature. It prints the wall time per call
(median), the nodes the executor ran (the graph as Grappler and oneDNN rewrote it: fused convolutions appear as
`_MklNative...Conv2D`), how many of them only read variables, the sum of the ops' own times and what the wall time
spends outside them (with one inter-op thread the executor runs the nodes one after another, so the difference is
its dispatch overhead), the op types by total time and the slowest nodes. `--trace FILE.json` writes the traced run
as a Chrome trace (open it in Perfetto or chrome://tracing).
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import re
import tempfile
import time

import numpy as np
import pandas as pd

# Ops whose only work is to hand a variable's value to the graph (a frozen graph has none).
VARIABLE_OPS = ("VarHandleOp", "ReadVariableOp", "Identity", "_Arg")


def node_op(node) -> str:
    """The op type of a `NodeExecStats` (its `timeline_label` reads `name = Op(inputs)`), else the node's name."""
    label = node.timeline_label
    return label.split("=", 1)[1].split("(")[0].strip() if "=" in label else node.node_name


def step_profile(step_stats) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`(by op type, by node)` of a `StepStats`: op types with `count`, `ms` (the nodes' own times summed) and
    `share` of all ops' time, sorted by `ms`; nodes with `node` (without the function-call scopes the signature's
    inlined functions prefix), `op`, `ms`, sorted by `ms`."""
    by_type, count, by_node = collections.Counter(), collections.Counter(), collections.Counter()
    for device in step_stats.dev_stats:
        for node in device.node_stats:
            op, ms = node_op(node), node.all_end_rel_micros / 1000
            by_type[op] += ms
            count[op] += 1
            by_node[(re.sub(r"^(StatefulPartitionedCall[^/]*/)+", "", node.node_name), op)] += ms
    total = sum(by_type.values()) or 1.0
    types = pd.DataFrame(
        [{"op": op, "count": count[op], "ms": ms, "share": ms / total} for op, ms in by_type.most_common()],
        columns=["op", "count", "ms", "share"],
    )
    nodes = pd.DataFrame(
        [{"node": name, "op": op, "ms": ms} for (name, op), ms in by_node.most_common()], columns=["node", "op", "ms"]
    )
    return types, nodes


def median_profile(profiles: list[tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`(by op type, by node)` as `step_profile` gives them, from the `step_profile`s of several traced calls: each
    node's median time over the calls, and the op types' sums of those medians. One traced call is at the mercy of
    a slow moment (a page fault, another process on the core); the median over calls is not."""
    calls = pd.concat([nodes for _, nodes in profiles], ignore_index=True)
    nodes = calls.groupby(["node", "op"], as_index=False, sort=False)["ms"].median()
    nodes = nodes.sort_values("ms", ascending=False, kind="stable", ignore_index=True)
    types = nodes.groupby("op", as_index=False, sort=False).agg(count=("node", "size"), ms=("ms", "sum"))
    types["share"] = types["ms"] / (types["ms"].sum() or 1.0)
    types = types.sort_values("ms", ascending=False, kind="stable", ignore_index=True)
    return types[["op", "count", "ms", "share"]], nodes[["node", "op", "ms"]]


def session_profile(
    saved_model_dir: str | pathlib.Path,
    batch: int = 1,
    threads: int = 2,
    inter_op_threads: int = 1,
    repeats: int = 20,
    trace: str | pathlib.Path | None = None,
    traced_calls: int = 5,
) -> dict:
    """Profile of `embed_images` of the SavedModel at `saved_model_dir` in a TF1 session (TF Serving's loader):
    `{"wall_ms": median per call, "nodes": executed nodes, "variable_nodes": of them `VARIABLE_OPS`, "op_ms": the
    ops' own times summed, "types": ..., "nodes_by_time": ...}` (see `step_profile`), each node's time the median
    over `traced_calls` traced calls after warm-up (`median_profile`); `trace` also writes the last of them as a
    Chrome trace."""
    import tensorflow as tf
    from tensorflow.python.client import timeline

    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads, inter_op_parallelism_threads=inter_op_threads
    )
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph, config=config) as session:
        signature = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(saved_model_dir)).signature_def[
            "embed_images"
        ]
        images = np.random.default_rng(0).uniform(0, 255, (batch, *_input_size(signature), 3)).astype(np.float32)
        feed, fetch = {signature.inputs["images"].name: images}, signature.outputs["embedding"].name
        for _ in range(3):
            session.run(fetch, feed)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            session.run(fetch, feed)
            times.append(time.perf_counter() - start)
        profiles = []
        for _ in range(max(1, traced_calls)):
            metadata = tf.compat.v1.RunMetadata()
            session.run(
                fetch,
                feed,
                options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE),
                run_metadata=metadata,
            )
            profiles.append(step_profile(metadata.step_stats))
    if trace is not None:
        pathlib.Path(trace).write_text(timeline.Timeline(metadata.step_stats).generate_chrome_trace_format())
    types, nodes = median_profile(profiles)
    return {
        "wall_ms": 1000 * float(np.median(times)),
        "nodes": int(types["count"].sum()),
        "variable_nodes": int(types.loc[types["op"].isin(VARIABLE_OPS), "count"].sum()),
        "op_ms": float(types["ms"].sum()),
        "types": types,
        "nodes_by_time": nodes,
    }


def _input_size(signature) -> tuple[int, int]:
    dims = signature.inputs["images"].tensor_shape.dim
    return int(dims[1].size), int(dims[2].size)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--saved-model", help="an export_saved_model version folder (default: export one)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads")
    parser.add_argument("--inter-op-threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls (median reported)")
    parser.add_argument("--traced-calls", type=int, default=5, help="traced calls (each node's median reported)")
    parser.add_argument("--trace", help="write the traced call as a Chrome trace (JSON) to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        saved_model = args.saved_model
        if saved_model is None:
            from benchmarks.models import NUM_CLASSES
            from hacnn_tf.export.saved_model import export_saved_model
            from hacnn_tf.model import HACNN

            saved_model = export_saved_model(HACNN(NUM_CLASSES), scratch, check=False)
        profile = session_profile(
            saved_model, args.batch, args.threads, args.inter_op_threads, args.repeats, args.trace, args.traced_calls
        )
    overhead = profile["wall_ms"] - profile["op_ms"]
    print(
        f"batch {args.batch}, {args.threads} intra-op / {args.inter_op_threads} inter-op threads: "
        f"{profile['wall_ms']:.2f} ms per call (median of {args.repeats}); {profile['nodes']} nodes executed "
        f"({profile['variable_nodes']} of them variable reads: {', '.join(VARIABLE_OPS)}); ops' own time "
        f"{profile['op_ms']:.2f} ms (each node's median over {args.traced_calls} traced calls), outside the ops "
        f"{overhead:.2f} ms\n"
    )
    print(profile["types"].head(25).to_string(index=False, float_format="{:.3f}".format))
    print()
    print(profile["nodes_by_time"].head(20).to_string(index=False, float_format="{:.3f}".format))
    return profile


if __name__ == "__main__":
    main()
