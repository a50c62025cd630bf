"""Identity and camera ids compare exactly whatever their dtype: the same identities give the same CMC / mAP / mINP
(equal to the int64 result and to torchreid's `eval_market1501`) as int64, uint64, int32, bool-free float and object
arrays, at small values and beyond 2^53 and 2^63; ids that have no exact integer value (fractional or non-finite
floats, floats beyond their exact integer range, a negative id beside one beyond int64) are refused with a one-line
`DataError` naming query/gallery and the value, in the evaluation and in the data readers."""

from __future__ import annotations

import pathlib
import types

import numpy as np
import pytest

from hacnn_tf.data import load_dataset
from hacnn_tf.data.identities import comparable_ids, integer_ids
from hacnn_tf.errors import DataError
from hacnn_tf.evaluation import compute_distance_matrix, evaluate_features, evaluate_rank
from tests.data.test_datasets import cuhk03_split, write_cuhk03_mat, write_split_hdf5


def _problem(seed: int = 0, num_q: int = 40, num_g: int = 200, num_ids: int = 25, num_cams: int = 3) -> tuple:
    """Clustered features (tie-free distances) and small non-negative int64 ids; two query identities are absent
    from the gallery."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids + 2, 8))
    q_pids = rng.integers(0, num_ids, num_q)
    q_pids[:2] = num_ids + np.arange(2)
    g_pids = rng.integers(0, num_ids, num_g)
    query = (centres[q_pids] + 0.8 * rng.standard_normal((num_q, 8))).astype(np.float32)
    gallery = (centres[g_pids] + 0.8 * rng.standard_normal((num_g, 8))).astype(np.float32)
    return query, gallery, (q_pids, g_pids, rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g))


def _as(ids: tuple, pid_offset: int, pid_dtypes: tuple, cam_offset: int = 0, cam_dtypes: tuple | None = None) -> tuple:
    """The same identities/cameras shifted by an offset (exactly, in Python ints) and cast to the given dtypes."""

    def cast(values: np.ndarray, offset: int, dtype: object) -> np.ndarray:
        shifted = [int(v) + offset for v in values]
        return np.array(shifted, dtype=object) if dtype is object else np.array(shifted, dtype=dtype)

    q_pids, g_pids, q_camids, g_camids = ids
    cam_dtypes = cam_dtypes or pid_dtypes
    return (
        cast(q_pids, pid_offset, pid_dtypes[0]),
        cast(g_pids, pid_offset, pid_dtypes[1]),
        cast(q_camids, cam_offset, cam_dtypes[0]),
        cast(g_camids, cam_offset, cam_dtypes[1]),
    )


# (pid offset, (query dtype, gallery dtype)): equality is all the metrics look at, so shifting every id by the same
# amount changes nothing, as long as the dtypes hold the shifted ids exactly.
SAME_IDENTITIES = [
    (0, (np.int64, np.uint64)),
    (0, (np.uint64, np.int64)),
    (0, (np.int32, np.uint8)),
    (0, (np.float64, np.int64)),
    (0, (np.float32, np.float64)),
    (0, (object, np.int16)),
    (2**53 + 1, (np.int64, np.uint64)),
    (2**53 + 1, (np.uint64, np.int64)),
    (2**53 + 1, (np.int64, object)),
    (2**62 + 1, (np.int64, np.uint64)),
    (2**62 + 1, (np.uint64, np.int64)),
    (2**63 + 1, (np.uint64, np.uint64)),
    (2**63 + 1, (object, np.uint64)),
    (-(2**62), (np.int64, np.int64)),
]


@pytest.mark.parametrize(("offset", "dtypes"), SAME_IDENTITIES)
def test_the_same_identities_give_the_same_result_whatever_the_dtype(
    torchreid_rank: types.ModuleType, offset: int, dtypes: tuple
) -> None:
    query, gallery, ids = _problem()
    distmat = compute_distance_matrix(query, gallery)
    expected_cmc, expected_map = torchreid_rank.eval_market1501(distmat, *ids, 50)
    int64_result = evaluate_features(query, gallery, *ids, return_minp=True)
    np.testing.assert_allclose(int64_result[0], expected_cmc, rtol=0, atol=1e-6)
    assert int64_result[1] == pytest.approx(expected_map, abs=1e-6)
    assert 0.2 < int64_result[1] < 0.9

    other = _as(ids, offset, dtypes, cam_offset=offset if offset >= 0 else 0)
    for result in (
        evaluate_features(query, gallery, *other, return_minp=True),
        evaluate_rank(distmat, *other, return_minp=True),
    ):
        np.testing.assert_array_equal(result[0], int64_result[0])
        assert result[1:] == pytest.approx(int64_result[1:], abs=1e-12)


def test_cuhk03_protocol_and_tied_rows_are_dtype_independent(torchreid_rank: types.ModuleType) -> None:
    """The argsort paths (tied distances; the CUHK03 single-gallery-shot draws) compare the ids too."""
    query, gallery, ids = _problem(1)
    distmat = np.floor(compute_distance_matrix(query, gallery) * 2).astype(np.float32)  # many ties
    expected_cmc, expected_map = torchreid_rank.eval_market1501(distmat, *ids, 50)
    other = _as(ids, 2**62 + 1, (np.int64, np.uint64))
    cmc, mean_ap = evaluate_rank(distmat, *other)
    np.testing.assert_allclose(cmc, expected_cmc, rtol=0, atol=1e-6)
    assert mean_ap == pytest.approx(expected_map, abs=1e-6)
    cuhk03 = evaluate_rank(distmat, *ids, use_metric_cuhk03=True, seed=3)
    cuhk03_shifted = evaluate_rank(distmat, *other, use_metric_cuhk03=True, seed=3)
    np.testing.assert_array_equal(cuhk03_shifted[0], cuhk03[0])
    assert cuhk03_shifted[1] == cuhk03[1]


def test_int64_ids_beyond_2_53_against_float64_are_refused_not_all_matched() -> None:
    """int64 `2**53 + 1` and float64 `2**53` compare equal in numpy (both become float64): every gallery image
    counted as a true match gave mAP 1.0. The float64 id no longer says which integer it was: refused."""
    query, gallery, (q_pids, g_pids, q_camids, g_camids) = _problem()
    q_big = np.full(q_pids.shape, 2**53 + 1, np.int64)
    g_big = np.where(np.arange(g_pids.size) % 7 == 0, 2**53 + 1, 2**53).astype(np.float64)
    with pytest.raises(DataError) as error:
        evaluate_features(query, gallery, q_big, g_big, q_camids, g_camids)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        "g_pids (gallery ids): float64 id 9007199254740992.0 at position 0 is beyond 2^53 - 1 = 9007199254740991"
    )
    # The same identities as int64 on both sides: only the true matches count.
    exact = evaluate_features(
        query,
        gallery,
        q_big,
        np.where(np.arange(g_pids.size) % 7 == 0, 2**53 + 1, 2**53).astype(np.int64),
        q_camids,
        g_camids,
    )
    assert exact[1] < 0.5


@pytest.mark.parametrize(
    ("q_pids", "g_pids", "message"),
    [
        (
            np.array([1.5, 2.0]),
            np.array([1, 2, 3]),
            "q_pids (query ids): float64 id 1.5 at position 0 is not an integer",
        ),
        (
            np.array([1, 2]),
            np.array([1.0, np.nan, 3.0]),
            "g_pids (gallery ids): float64 id nan at position 1 is not an integer",
        ),
        (
            np.array([1, 2], np.float32),
            np.array([1, 2, 2**24], np.float32),
            "g_pids (gallery ids): float32 id 16777216.0 at position 2 is beyond 2^24 - 1 = 16777215",
        ),
        (
            np.array([-1, 2]),
            np.array([1, 2, 2**63], np.uint64),
            "pids: query id -1 (position 0) is negative and gallery id 9223372036854775808 (position 2) is beyond int64",  # noqa: E501
        ),
        (np.array(["0001", "0002"]), np.array([1, 2, 3]), "q_pids (query ids): ids must be integers, got dtype <U4"),
        (
            np.array([1, None], dtype=object),
            np.array([1, 2, 3]),
            "q_pids (query ids): id None at position 1 is not a number",
        ),
        (
            np.array([1, 2**64], dtype=object),
            np.array([1, 2, 3]),
            "q_pids (query ids): id 18446744073709551616 at position 1 is outside the 64-bit integer range",
        ),
    ],
)
def test_ids_without_an_exact_integer_value_are_refused_in_one_line(q_pids, g_pids, message: str) -> None:
    distmat = np.arange(len(q_pids) * len(g_pids), dtype=np.float32).reshape(len(q_pids), len(g_pids))
    cams = np.zeros(len(q_pids), np.int64), np.ones(len(g_pids), np.int64)
    with pytest.raises(DataError) as error:
        evaluate_rank(distmat, q_pids, g_pids, *cams)
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_camera_ids_are_normalised_the_same_way() -> None:
    """A query camera equal to the gallery image's discards it (same identity, same camera), whatever the dtypes;
    a float camera beyond its exact range is refused naming the gallery cameras."""
    distmat = np.array([[0.1, 0.2, 0.3]], np.float32)
    q_pids, g_pids = np.array([7]), np.array([7, 7, 8])
    base = evaluate_rank(distmat, q_pids, g_pids, np.array([2**62 + 1]), np.array([2**62 + 1, 5, 5]))
    mixed = evaluate_rank(distmat, q_pids, g_pids, np.array([2**62 + 1], np.uint64), np.array([2**62 + 1, 5, 5]))
    assert base[1] == mixed[1] == 1.0 and base[0][0] == mixed[0][0] == 1.0  # the camera-1 match is discarded
    with pytest.raises(DataError, match=r"^g_camids \(gallery ids\): float64 id 9007199254740992.0 at position 0"):
        evaluate_rank(distmat, q_pids, g_pids, np.array([1]), np.array([2.0**53, 5, 5]))


def test_integer_ids_returns_one_exact_dtype() -> None:
    assert integer_ids(np.array([3.0, 7.0]), "ids").dtype == np.int64
    assert integer_ids(np.array([1, 2**63 + 5], dtype=object), "ids").tolist() == [1, 2**63 + 5]
    query, gallery = comparable_ids(np.array([2**62 + 1]), np.array([2**62 + 1], np.uint64), "pids")
    assert query.dtype == gallery.dtype == np.int64 and query[0] == 2**62 + 1
    query, gallery = comparable_ids(np.array([1]), np.array([2**63 + 1], np.uint64), "pids")
    assert query.dtype == gallery.dtype == np.uint64
    with pytest.raises(DataError, match=r"^train pid: id 9223372036854775808 in a.jpg is beyond the int64 range"):
        integer_ids(np.array([1, 2**63], np.uint64), "train pid", ["b.jpg", "a.jpg"], np.int64)


# ------------------------------------------------------------------------------------------------------------------
# The data readers: ids parsed from file names, CSV cells and CUHK03's MATLAB doubles go through the same check.


def test_a_csv_id_beyond_int64_is_refused_naming_its_line(tmp_path: pathlib.Path) -> None:
    """Before: an OverflowError traceback ("Python int too large to convert to C long")."""
    csv = tmp_path / "data.csv"
    csv.write_text("path,pid,camid,split\na.jpg,1,0,train\nb.jpg,99999999999999999999,1,query\n")
    with pytest.raises(DataError) as error:
        load_dataset("csv", csv)
    assert str(error.value) == (
        f"folder: pid: id 99999999999999999999 in CSV {csv} line 3 is outside the 64-bit integer range"
    )


def test_a_file_name_id_beyond_int64_is_refused_naming_the_file(tmp_path: pathlib.Path) -> None:
    for folder in ("bounding_box_train", "query", "bounding_box_test"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "0001_c1s1_000001_00.jpg").write_bytes(b"")
    big = tmp_path / "query" / "9223372036854775808_c2s1_000001_00.jpg"
    big.write_bytes(b"")
    with pytest.raises(DataError) as error:
        load_dataset("market1501", tmp_path)
    assert (
        str(error.value) == f"query pid: id 9223372036854775808 in {big} is beyond the int64 range "
        f"(at most 9223372036854775807)"
    )


def test_cuhk03_fractional_labels_are_refused_not_truncated(tmp_path: pathlib.Path) -> None:
    """CUHK03's labels are MATLAB doubles; `astype(int64)` truncated 101.5 to 101, merging two identities."""
    write_cuhk03_mat(tmp_path / "cuhk03_release" / "cuhk-03.mat")
    split = cuhk03_split()
    config = tmp_path / "cuhk03_new_protocol_config_detected.mat"
    write_split_hdf5(config, split)
    assert load_dataset("cuhk03", tmp_path).train["orig_pid"].nunique() == 3
    split["labels"] = split["labels"].copy()
    split["labels"][1] += 0.5
    write_split_hdf5(config, split)
    with pytest.raises(DataError, match=r"^train pid: float64 id 101.5 in .*1_001_1_02.png is not an integer"):
        load_dataset("cuhk03", tmp_path)
