"""The goals table of `benchmarks.formats` on a made-up table (ratios worked out by hand), and its CPU flags."""

import numpy as np
import pandas as pd

from benchmarks.formats import GOALS, goals


def fake_table() -> pd.DataFrame:
    rows = {"keras": (40.0, 50.0), "saved_model-fp32": (45.0, 52.0), "saved_model-bf16": (46.0, 87.0),
            "saved_model-fp16": (np.nan, np.nan), "tflite-fp32": (19.0, 48.0), "tflite-int8": (11.4, 94.0),
            "openvino-fp32@bf16": (17.7, 76.0), "torchreid-onnx18-ort": (51.0, 30.0),
            "torchreid-onnx18-openvino": (33.0, 37.0), "torchreid-onnx18-openvino@bf16": (25.0, 55.0)}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["latency_ms", "throughput"])
    table["mean_cosine"] = 1.0
    return table


def test_goals_compare_the_best_rows_in_each_direction():
    table = goals(fake_table())
    assert list(table.index) == list(GOALS)
    rows = table.to_dict(orient="index")
    throughput, latency, bf16, int8 = (rows[name] for name in GOALS)
    # Batch 64: tflite-int8's 94 img/s over the bf16 OpenVINO peer's 55.
    assert (throughput["numerator"], throughput["denominator"]) == ("tflite-int8", "torchreid-onnx18-openvino@bf16")
    assert np.isclose(throughput["ratio"], 94 / 55) and throughput["met"] and throughput["goal"] == ">= 1.3x"
    # Batch 1: tflite-int8's 11.4 ms over the peer's best 25 ms (a time: lower is better).
    assert (latency["numerator"], latency["denominator"]) == ("tflite-int8", "torchreid-onnx18-openvino@bf16")
    assert np.isclose(latency["ratio"], 11.4 / 25) and latency["met"]
    assert np.isclose(bf16["ratio"], 87 / 55) and bf16["met"]
    assert (int8["numerator"], int8["denominator"]) == ("tflite-int8", "tflite-fp32")
    assert np.isclose(int8["ratio"], 0.6) and int8["met"]  # the bound itself is met


def test_goals_are_missed_past_their_bounds_and_without_rows():
    table = fake_table()
    table.loc["tflite-int8", "latency_ms"] = 11.5  # 0.605x fp32
    table.loc["torchreid-onnx18-openvino@bf16", "throughput"] = 90.0  # 94 / 90 < 1.3, 87 / 90 < 1.0
    result = goals(table).to_dict(orient="index")
    assert [result[name]["met"] for name in GOALS] == [False, True, False, False]
    without_bf16 = goals(table.drop(index="saved_model-bf16")).to_dict(orient="index")
    bf16 = without_bf16["bf16 SavedModel (TensorFlow) vs fastest peer, batch-64 img/s"]
    assert np.isnan(bf16["ratio"]) and not bf16["met"]
    no_peer = goals(table[~table.index.str.startswith("torchreid")]).to_dict(orient="index")
    assert all(np.isnan(no_peer[name]["ratio"]) for name in list(GOALS)[:3])
