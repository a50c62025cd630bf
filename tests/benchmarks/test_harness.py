import numpy as np
import pandas as pd

from benchmarks.harness import Contender, cpu_flags, interleave, summarize
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

    (query, gallery), distances, (q_pids, g_pids, q_camids, g_camids) = market_sized_problem(
        num_query=50, num_gallery=400, dim=8, num_ids=20
    )
    assert query.shape == (50, 8) and gallery.shape == (400, 8)
    assert distances["q_g"].shape == (50, 400) and distances["g_g"].shape == (400, 400)
    valid = (g_pids[None] == q_pids[:, None]) & (g_camids[None] != q_camids[:, None])
    assert valid.any(axis=1).all()


def test_evaluation_goals_are_limits_on_the_rows_own_time_and_memory():
    stats = {"median_s": 100.0, "p10_s": 100.0, "p90_s": 100.0, "images_per_s": 0.01}
    within = _row("evaluation_msmt17", "hacnn_tf_features", 0, stats, unit="s", extra={"peak_mib": 5000.0})
    assert within["goal"] == "<= 2 min, <= 6 GiB" and within["met"]
    assert not _row("evaluation_msmt17", "hacnn_tf_features", 0, stats, unit="s", extra={"peak_mib": 7000.0})["met"]
    slow = dict(stats, median_s=130.0)
    assert not _row("evaluation_msmt17", "hacnn_tf_features", 0, slow, unit="s", extra={"peak_mib": 5000.0})["met"]
    assert not _row("evaluation_msmt17", "hacnn_tf_features", 0, stats, unit="s")["met"]  # no memory figure


def test_msmt17_rows_run_fresh_processes_and_say_why_torchreid_does_not(monkeypatch):
    from benchmarks import run

    calls = []

    def fake_peak_rss_of(module, *args, timeout):
        calls.append((module, *args))
        return {"seconds": 60.0, "peak_mib": 3000.0, "baseline_mib": 900.0, "rank1": 0.8, "mAP": 0.4, "mINP": 0.05}

    monkeypatch.setattr(run, "peak_rss_of", fake_peak_rss_of)
    rows = run.msmt17_rows(rerank=False) + run.msmt17_rows(rerank=True)
    assert calls == [
        ("benchmarks.evaluation", "dense", "msmt17"),
        ("benchmarks.evaluation", "features", "msmt17"),
        ("benchmarks.evaluation", "features", "msmt17", "--rerank"),
    ]
    assert [(row["section"], row["contender"]) for row in rows] == [
        ("evaluation_msmt17", "torchreid"),
        ("evaluation_msmt17", "hacnn_tf"),
        ("evaluation_msmt17", "hacnn_tf_features"),
        ("evaluation_msmt17+rerank", "torchreid"),
        ("evaluation_msmt17+rerank", "hacnn_tf_features"),
    ]
    assert "21.4 GiB" in rows[0]["note"] and "32.8 GiB each" in rows[3]["note"]
    assert rows[2]["median_ms"] == 60000.0 and rows[2]["met"] and rows[4]["met"]


def test_synthetic_features_have_the_requested_layout():
    from benchmarks.evaluation import synthetic_features

    query, gallery, (q_pids, _, q_camids, g_camids) = synthetic_features(30, 200, 10, 3, 16)
    assert query.shape == (30, 16) and gallery.shape == (200, 16) and query.dtype == np.float32
    assert q_pids.max() < 10 and g_camids.max() < 3 and q_camids.shape == (30,)


def test_cpu_flags_read_the_flags_line():
    cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n"
    assert cpu_flags(cpuinfo) == {"AVX512-BF16": True, "AMX": False, "AVX512-VNNI": True, "AVX-VNNI": False}
    assert cpu_flags("flags : amx_tile amx_bf16")["AMX"] and not any(cpu_flags("").values())
