"""`benchmarks.profile_ops.step_profile` on a hand-made StepStats (sums worked out by hand)."""

import numpy as np
from tensorflow.core.framework import step_stats_pb2

from benchmarks.profile_ops import median_profile, step_profile


def _node(name: str, op: str, micros: int) -> step_stats_pb2.NodeExecStats:
    return step_stats_pb2.NodeExecStats(
        node_name=name, timeline_label=f"{name} = {op}(x, y)", all_end_rel_micros=micros
    )


def test_step_profile_sums_by_op_type_and_strips_call_scopes():
    stats = step_stats_pb2.StepStats(
        dev_stats=[
            step_stats_pb2.DeviceStepStats(
                device="cpu:0",
                node_stats=[
                    _node(
                        "StatefulPartitionedCall/StatefulPartitionedCall_1/hacnn/conv_a", "_MklNativeFusedConv2D", 3000
                    ),
                    _node("hacnn/conv_b", "_MklNativeFusedConv2D", 1000),
                    _node("read_kernel", "ReadVariableOp", 500),
                ],
            ),
            step_stats_pb2.DeviceStepStats(
                device="cpu:1", node_stats=[step_stats_pb2.NodeExecStats(node_name="_SOURCE", all_end_rel_micros=500)]
            ),
        ]
    )
    types, nodes = step_profile(stats)
    assert types.to_dict(orient="records") == [
        {"op": "_MklNativeFusedConv2D", "count": 2, "ms": 4.0, "share": 0.8},
        {"op": "ReadVariableOp", "count": 1, "ms": 0.5, "share": 0.1},
        {"op": "_SOURCE", "count": 1, "ms": 0.5, "share": 0.1},
    ]  # no label: the node's name
    assert nodes["node"].tolist()[:2] == ["hacnn/conv_a", "hacnn/conv_b"]
    assert nodes["ms"].tolist()[:2] == [3.0, 1.0]


def test_median_profile_takes_each_nodes_median_over_the_calls():
    def call(conv_a: int, conv_b: int, read: int):
        stats = step_stats_pb2.StepStats(
            dev_stats=[
                step_stats_pb2.DeviceStepStats(
                    node_stats=[
                        _node("conv_a", "Conv2D", conv_a),
                        _node("conv_b", "Conv2D", conv_b),
                        _node("read", "ReadVariableOp", read),
                    ]
                )
            ]
        )
        return step_profile(stats)

    # conv_a has one slow call (9 ms) among 1, 1.2: its median is 1.2; conv_b's 2.0; read's 0.5.
    types, nodes = median_profile([call(1000, 2000, 500), call(9000, 2500, 400), call(1200, 1500, 600)])
    assert nodes.to_dict(orient="records") == [
        {"node": "conv_b", "op": "Conv2D", "ms": 2.0},
        {"node": "conv_a", "op": "Conv2D", "ms": 1.2},
        {"node": "read", "op": "ReadVariableOp", "ms": 0.5},
    ]
    assert types["op"].tolist() == ["Conv2D", "ReadVariableOp"] and types["count"].tolist() == [2, 1]
    np.testing.assert_allclose(types["ms"], [3.2, 0.5])
    np.testing.assert_allclose(types["share"], [3.2 / 3.7, 0.5 / 3.7])
