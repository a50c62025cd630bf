"""Where inference time goes: TensorFlow's per-op step statistics of one HA-CNN batch, summed by op type.

`python -m benchmarks.profile_ops --batch 64` prints the op types by total time (the graph as Grappler and oneDNN
rewrite it: fused convolutions appear as `_MklNative...Conv2D`) and the slowest single ops. The model's variables
are frozen into constants first, which is what lets a v1 session trace it with `RunOptions.FULL_TRACE`.
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
import pandas as pd


def op_profile(batch: int = 64, repeats: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """`(time by op type, slowest ops, median wall ms)` of HA-CNN inference (random weights, paper size)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from benchmarks.models import INPUT_SIZE, NUM_CLASSES, images
    from hacnn_tf.model import HACNN

    model = HACNN(NUM_CLASSES)
    embed = tf.function(lambda x: model(x, training=False)["embedding"], autograph=False)
    frozen = convert_variables_to_constants_v2(embed.get_concrete_function(tf.TensorSpec((batch, *INPUT_SIZE, 3))))
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(frozen.graph.as_graph_def(), name="")
    feed, fetch = {frozen.inputs[0].name: images(batch)}, frozen.outputs[0].name
    with tf.compat.v1.Session(graph=graph) as session:
        session.run(fetch, feed)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            session.run(fetch, feed)
            times.append(time.perf_counter() - start)
        metadata = tf.compat.v1.RunMetadata()
        session.run(fetch, feed, options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE),
                    run_metadata=metadata)
    by_type, by_node = collections.Counter(), collections.Counter()
    for device in metadata.step_stats.dev_stats:
        for node in device.node_stats:
            label = node.timeline_label
            op = label.split("=", 1)[1].split("(")[0].strip() if "=" in label else node.node_name
            by_type[op] += node.all_end_rel_micros / 1000
            by_node[(node.node_name, op)] += node.all_end_rel_micros / 1000
    total = sum(by_type.values())
    types = pd.DataFrame([{"op": op, "ms": ms, "share": ms / total} for op, ms in by_type.most_common()])
    nodes = pd.DataFrame([{"node": name, "op": op, "ms": ms} for (name, op), ms in by_node.most_common(20)])
    return types, nodes, 1000 * float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    types, nodes, wall = op_profile(args.batch)
    print(f"batch {args.batch}: {wall:.1f} ms per batch (op times below overlap: ops run concurrently)\n")
    print(types.head(20).to_string(index=False, float_format="{:.3f}".format))
    print()
    print(nodes.to_string(index=False, float_format="{:.1f}".format))


if __name__ == "__main__":
    main()
