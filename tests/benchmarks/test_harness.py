import numpy as np
import pandas as pd

from benchmarks.harness import Contender, interleave, summarize
from benchmarks.run import GOALS, _row, markdown


def test_interleave_alternates_contenders_and_summarize_takes_medians():
    calls = []
    contenders = [Contender("a", lambda: calls.append("a"), items=4), Contender("b", lambda: calls.append("b"))]
    times = interleave(contenders, repeats=3, warmup=1, pause=0.0)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up of each, then rounds that alternate
    assert {name: t.shape for name, t in times.items()} == {"a": (3,), "b": (3,)}
    stats = summarize({"a": np.array([1.0, 4.0, 2.0])}, {"a": 8})
    assert stats["a"]["median_s"] == 2.0 and stats["a"]["images_per_s"] == 4.0


def test_rows_judge_goals_in_their_direction():
    fast = {"median_s": 0.5, "p10_s": 0.4, "p90_s": 0.6, "images_per_s": 128.0}
    row = _row("inference", "saved_model", 64, fast, ratio=3.2, gflop=1.0, peak=256.0)
    assert row["met"] and row["goal"] == GOALS[("inference", "saved_model", 64)][1] and row["peak_fraction"] == 0.5
    assert not _row("inference", "saved_model", 64, fast, ratio=2.9)["met"]
    assert _row("latency", "tflite_int8", 1, fast, ratio=0.55)["met"]  # a time ratio: lower is better
    assert not _row("latency", "tflite_fp32", 1, fast, ratio=0.2)["met"]
    text = markdown(pd.DataFrame([row]), "test machine", 256.0)
    assert "| inference | saved_model | 64 | 500.0 |" in text and "256 GFLOP/s" in text


def test_market_sized_problem_has_true_matches_for_every_query():
    from benchmarks.run import market_sized_problem

    distances, (q_pids, g_pids, q_camids, g_camids) = market_sized_problem(num_query=50, num_gallery=400, dim=8,
                                                                                  num_ids=20)
    assert distances["q_g"].shape == (50, 400) and distances["g_g"].shape == (400, 400)
    valid = (g_pids[None] == q_pids[:, None]) & (g_camids[None] != q_camids[:, None])
    assert valid.any(axis=1).all()
