"""evaluate_rank against torchreid's `eval_market1501` / `eval_cuhk03` (ties included), mINP against its definition,
plus the table helpers."""

from __future__ import annotations

import pathlib
import types

import numpy as np
import pandas as pd
import pytest

from hacnn_tf.evaluation import evaluate, evaluate_rank, results_table, write_results


def _random_problem(seed: int, num_q: int = 50, num_g: int = 300, num_ids: int = 40, num_cams: int = 4) -> tuple:
    """Continuous (tie-free) distances where true matches tend to be closer; pid 0 = distractors; the first five
    query identities are absent from the gallery; random cameras give many same-camera matches."""
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, num_ids + 1, num_q)
    q_pids[:5] = num_ids + 1 + np.arange(5)
    g_pids = rng.integers(0, num_ids + 1, num_g)
    q_camids, g_camids = rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)
    distmat = rng.random((num_q, num_g)).astype(np.float32)
    distmat -= 0.5 * rng.random((num_q, num_g)).astype(np.float32) * (q_pids[:, None] == g_pids[None, :])
    return distmat, q_pids, g_pids, q_camids, g_camids


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("max_rank", [1, 20])
def test_market1501_matches_torchreid(torchreid_rank: types.ModuleType, seed: int, max_rank: int) -> None:
    problem = _random_problem(seed)
    expected_cmc, expected_map = torchreid_rank.eval_market1501(*problem, max_rank)
    cmc, mean_ap = evaluate_rank(*problem, max_rank=max_rank, chunk_size=16)
    assert cmc.dtype == np.float32 and cmc.shape == (max_rank,)
    np.testing.assert_allclose(cmc, expected_cmc, rtol=0, atol=1e-6)
    assert mean_ap == pytest.approx(expected_map, abs=1e-6)
    assert 0 < mean_ap < 1 and 0 < cmc[0] < 1  # non-degenerate problem


def test_tied_distances_rank_as_in_torchreid(torchreid_rank: types.ModuleType) -> None:
    """Integer distances: almost every true match is tied with other entries, so the rows are ranked by np.argsort,
    whose (unstable) order of ties torchreid's numbers depend on."""
    distmat, q_pids, g_pids, q_camids, g_camids = _random_problem(11)
    distmat = np.floor(distmat * 6).astype(np.float32)
    distmat[::2, ::3] = 2.0  # long runs of one value
    expected_cmc, expected_map = torchreid_rank.eval_market1501(distmat, q_pids, g_pids, q_camids, g_camids, 20)
    cmc, mean_ap = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=20, chunk_size=7)
    np.testing.assert_allclose(cmc, expected_cmc, rtol=0, atol=1e-6)
    assert mean_ap == pytest.approx(expected_map, abs=1e-12)


def _minp_by_definition(distmat, q_pids, g_pids, q_camids, g_camids) -> float:
    """mINP (Ye et al., TPAMI 2021): per valid query, matches / (1-based rank of its hardest match), averaged."""
    penalties = []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i]))
        matches = np.flatnonzero(g_pids[order][keep] == q_pids[i])
        if matches.size:
            penalties.append(matches.size / (matches[-1] + 1))
    return float(np.mean(penalties))


@pytest.mark.parametrize("seed", range(3))
def test_minp_matches_its_definition(seed: int) -> None:
    problem = _random_problem(30 + seed)
    cmc, _, mean_inp = evaluate_rank(*problem, return_minp=True, chunk_size=9)
    assert mean_inp == pytest.approx(_minp_by_definition(*problem), abs=1e-12)
    assert 0 < mean_inp < 1
    np.testing.assert_array_equal(cmc, evaluate_rank(*problem)[0])


def test_nan_distances_are_refused() -> None:
    distmat, *ids = _hand_problem()
    distmat[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN in 1 query rows"):
        evaluate_rank(distmat, *ids)


def test_chunking_does_not_change_the_result() -> None:
    problem = _random_problem(7, num_q=40)
    cmc, mean_ap = evaluate_rank(*problem, chunk_size=1000)
    for chunk_size in (1, 3):
        other_cmc, other_map = evaluate_rank(*problem, chunk_size=chunk_size)
        np.testing.assert_array_equal(other_cmc, cmc)
        assert other_map == pytest.approx(mean_ap, rel=1e-12)


def test_max_rank_is_clamped_to_the_gallery_size(torchreid_rank: types.ModuleType) -> None:
    problem = list(_random_problem(3, num_q=20, num_g=8, num_ids=3))
    problem[3][:] = 0  # queries from camera 0, gallery from others: nothing is discarded, lists stay num_g long
    problem[4][:] = 1 + np.arange(8) % 3
    expected_cmc, expected_map = torchreid_rank.evaluate_py(*problem, 50, False)
    cmc, mean_ap = evaluate_rank(*problem, max_rank=50)
    assert cmc.shape == (8,)
    np.testing.assert_allclose(cmc, expected_cmc, rtol=0, atol=1e-6)
    assert mean_ap == pytest.approx(expected_map, abs=1e-6)


def _hand_problem() -> tuple:
    # Query 0 (pid 1, cam 0) ranks: g1 (pid 2), g2 (pid 1 cam 0: discarded), g0 (match), g4 (pid 3), g3 (match)
    #   -> kept list [0, 1, 0, 1]: AP = (1/2 + 2/4) / 2 = 0.5, first match at rank 2.
    # Query 1 (pid 3, cam 0): g4 first -> AP = 1, rank 1.  Query 2 (pid 9) has no match and is skipped.
    distmat = np.array(
        [[0.3, 0.1, 0.2, 0.5, 0.4], [0.9, 0.8, 0.7, 0.6, 0.05], [0.1, 0.2, 0.3, 0.4, 0.5]], dtype=np.float32
    )
    q_pids, q_camids = np.array([1, 3, 9]), np.array([0, 0, 0])
    g_pids, g_camids = np.array([1, 2, 1, 1, 3]), np.array([1, 1, 0, 2, 1])
    return distmat, q_pids, g_pids, q_camids, g_camids


def test_hand_computed_case() -> None:
    cmc, mean_ap, mean_inp = evaluate_rank(*_hand_problem(), max_rank=5, return_minp=True)
    # Query 0's kept list has 4 entries; beyond it its curve stays at 1.
    np.testing.assert_allclose(cmc, [0.5, 1.0, 1.0, 1.0, 1.0])
    assert mean_ap == pytest.approx(0.75)
    # INP: query 0 has 2 matches, the last at rank 4 -> 2/4; query 1: 1/1.
    assert mean_inp == pytest.approx(0.75)


def test_evaluate_reads_data_frames_and_reports_ranks() -> None:
    distmat, q_pids, g_pids, q_camids, g_camids = _hand_problem()
    query_df = pd.DataFrame({"pid": q_pids, "camid": q_camids})
    gallery_df = pd.DataFrame({"pid": g_pids, "camid": g_camids})
    result = evaluate(distmat, query_df, gallery_df, ranks=(1, 2, 5))
    assert list(result) == ["mAP", "mINP", "rank1", "rank2", "rank5", "cmc"]
    assert (result["mAP"], result["mINP"], result["rank1"], result["rank2"], result["rank5"]) == pytest.approx(
        (0.75, 0.75, 0.5, 1, 1)
    )
    with pytest.raises(ValueError, match=r"ranks \[20\]"):
        evaluate(distmat, query_df, gallery_df, ranks=(1, 20))


def test_no_valid_query_is_an_error() -> None:
    distmat, q_pids, g_pids, q_camids, g_camids = _hand_problem()
    with pytest.raises(ValueError, match="no query identity appears in the gallery"):
        evaluate_rank(distmat[2:], q_pids[2:], g_pids, q_camids[2:], g_camids)
    # A match seen only from the query's own camera is discarded too.
    with pytest.raises(ValueError, match="no query identity"):
        evaluate_rank(distmat[:1, 2:3], q_pids[:1], g_pids[2:3], q_camids[:1], g_camids[2:3])


@pytest.mark.parametrize(
    ("bad", "message"),
    [({"g_pids": np.zeros(4)}, r"g_pids must be 1-D of length 5"), ({"distmat": np.zeros(5)}, "must be 2-D")],
)
def test_rejects_inconsistent_inputs(bad: dict, message: str) -> None:
    args = dict(zip(["distmat", "q_pids", "g_pids", "q_camids", "g_camids"], _hand_problem()))
    with pytest.raises(ValueError, match=message):
        evaluate_rank(**(args | bad))


@pytest.mark.parametrize("seed", range(3))
def test_cuhk03_matches_torchreid_with_the_same_draws(
    torchreid_rank: types.ModuleType, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """torchreid samples with `np.random.choice(idxs)`; fed from a generator the way evaluate_rank documents its
    draws (one `random()` per identity, `idxs[int(u * len(idxs))]`), both must sample the same images."""
    problem = _random_problem(10 + seed)
    draws = np.random.default_rng(seed)
    monkeypatch.setattr(np.random, "choice", lambda idxs: idxs[int(draws.random() * len(idxs))])
    expected_cmc, expected_map = torchreid_rank.eval_cuhk03(*problem, 20)
    monkeypatch.undo()
    cmc, mean_ap = evaluate_rank(*problem, max_rank=20, use_metric_cuhk03=True, seed=seed, chunk_size=16)
    np.testing.assert_allclose(cmc, expected_cmc, rtol=0, atol=1e-6)
    assert mean_ap == pytest.approx(expected_map, abs=1e-6)
    # AP is computed on the full kept list, as in the Market protocol; the CMC is a different one.
    market_cmc, market_map = evaluate_rank(*problem, max_rank=20)
    assert mean_ap == pytest.approx(market_map, abs=1e-12)
    assert not np.allclose(cmc, market_cmc)


def test_cuhk03_is_reproducible_from_the_seed() -> None:
    problem = _random_problem(20)
    first = evaluate_rank(*problem, use_metric_cuhk03=True, seed=5)[0]
    np.testing.assert_array_equal(evaluate_rank(*problem, use_metric_cuhk03=True, seed=5)[0], first)
    assert not np.array_equal(evaluate_rank(*problem, use_metric_cuhk03=True, seed=6)[0], first)


def _leftovers(directory: pathlib.Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


def test_results_table_and_written_files(tmp_path: pathlib.Path) -> None:
    results = {
        "HA-CNN (torch)": {"mAP": 0.7512, "rank1": 0.9001, "cmc": np.ones(5)},
        "HA-CNN | TF": {"mAP": 0.75, "rank1": 0.9},
    }
    table = results_table(results)
    assert list(table.columns) == ["mAP", "rank1"] and table.index.name == "model"
    assert table.loc["HA-CNN (torch)", "mAP"] == pytest.approx(75.12)
    assert results_table(results, percent=False).loc["HA-CNN | TF", "rank1"] == pytest.approx(0.9)

    csv_path, md_path = write_results(table, tmp_path / "out" / "market.v1")
    assert (csv_path.name, md_path.name) == ("market.v1.csv", "market.v1.md")
    pd.testing.assert_frame_equal(pd.read_csv(csv_path, index_col="model"), table)
    assert md_path.read_text().splitlines() == [
        "| model | mAP | rank1 |",
        "|:---|---:|---:|",
        "| HA-CNN (torch) | 75.12 | 90.01 |",
        r"| HA-CNN \| TF | 75.00 | 90.00 |",
    ]
    write_results(table.iloc[:1], tmp_path / "out" / "market.v1")  # overwrites in place
    assert len(pd.read_csv(csv_path)) == 1 and _leftovers(tmp_path / "out") == []


def test_failed_write_leaves_the_previous_file(tmp_path: pathlib.Path) -> None:
    table = results_table({"a": {"mAP": 0.5}})
    csv_path, _ = write_results(table, tmp_path / "r")
    before = csv_path.read_text()
    with pytest.raises(AttributeError):
        write_results(object(), tmp_path / "r")  # type: ignore[arg-type]
    assert csv_path.read_text() == before and _leftovers(tmp_path) == []


@pytest.mark.parametrize("tied", [False, True])
def test_queries_with_many_matches_rank_as_in_torchreid(torchreid_rank: types.ModuleType, tied: bool) -> None:
    """Identities with hundreds of gallery images: ranked with one sort of the row instead of a pass per match."""
    problem = _random_problem(40, num_q=30, num_g=2000, num_ids=4)
    if tied:
        problem = (np.round(problem[0], 2), *problem[1:])
    expected_cmc, expected_map = torchreid_rank.eval_market1501(*problem, 20)
    cmc, mean_ap = evaluate_rank(*problem, max_rank=20)
    np.testing.assert_allclose(cmc, expected_cmc, rtol=0, atol=1e-6)
    assert mean_ap == pytest.approx(expected_map, abs=1e-9)
