"""Data set readers on tiny fake trees: exact tables, relabelling, junk/distractors, errors and corrupt images."""

from __future__ import annotations

import logging
import pathlib
import struct
import subprocess
import sys
import zlib

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hacnn_tf.data import datasets
from hacnn_tf.data.datasets import ReIDDataset, load_dataset, verify_images
from hacnn_tf.errors import DataError, InputFileError, UserError

REPO = pathlib.Path(__file__).resolve().parents[2]


def write_image(path: pathlib.Path, value: int = 0, size: tuple[int, int] = (8, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value % 256, 40, 80)).save(path)


def make_tree(base: pathlib.Path, layout: dict[str, list[str]]) -> None:
    for folder, names in layout.items():
        (base / folder).mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            if name.lower().endswith((".jpg", ".png")):
                write_image(base / folder / name, i)
            else:
                (base / folder / name).write_text("not an image")


def rows(df: pd.DataFrame, *columns: str) -> list[tuple]:
    """The table's rows as (file name, *columns) tuples, sorted by file name."""
    names = [pathlib.Path(p).name for p in df["path"]]
    return sorted(zip(names, *(df[c].tolist() for c in columns)))


MARKET = {
    "bounding_box_train": [
        "0010_c6s4_002427_02.jpg",
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000551_01.jpg",
        "0007_c3s3_077419_03.jpg",
        "notes.txt",
    ],
    "query": ["0003_c1s1_000001_00.jpg", "0005_c2s1_000101_00.jpg"],
    "bounding_box_test": [
        "0003_c4s2_000020_01.jpg",
        "0005_c1s1_000150_02.jpg",
        "0000_c5s1_000300_01.jpg",
        "-1_c1s1_000401_03.jpg",
        "0005_c2s1_000700_01.jpg",
    ],
}


# ------------------------------------------------------------------------------------------------------------
# Market-1501 / DukeMTMC-reID


def test_market1501_tables(tmp_path: pathlib.Path) -> None:
    make_tree(tmp_path / "Market-1501-v15.09.15", MARKET)
    data = load_dataset("Market-1501", tmp_path)

    assert isinstance(data, ReIDDataset) and data.name == "Market-1501"
    assert rows(data.train, "pid", "orig_pid", "camid", "split") == [
        ("0002_c1s1_000451_03.jpg", 0, 2, 0, "train"),
        ("0002_c2s1_000551_01.jpg", 0, 2, 1, "train"),
        ("0007_c3s3_077419_03.jpg", 1, 7, 2, "train"),
        ("0010_c6s4_002427_02.jpg", 2, 10, 5, "train"),
    ]
    assert rows(data.query, "pid", "camid") == [("0003_c1s1_000001_00.jpg", 3, 0), ("0005_c2s1_000101_00.jpg", 5, 1)]
    # junk (-1) dropped, distractor (0) kept, ids not relabelled
    assert rows(data.gallery, "pid", "camid") == [
        ("0000_c5s1_000300_01.jpg", 0, 4),
        ("0003_c4s2_000020_01.jpg", 3, 3),
        ("0005_c1s1_000150_02.jpg", 5, 0),
        ("0005_c2s1_000700_01.jpg", 5, 1),
    ]
    assert all(pathlib.Path(p).is_absolute() and pathlib.Path(p).is_file() for p in data.gallery["path"])
    assert {"path", "pid", "camid", "split", "orig_pid"} <= set(data.train.columns)
    assert data.train["pid"].dtype == np.int64 and data.train["camid"].dtype == np.int64
    assert data.num_train_pids == 3 and data.num_train_cams == 4
    expected = pd.DataFrame(
        {"ids": [3, 2, 3], "images": [4, 2, 4], "cameras": [4, 2, 4]}, index=["train", "query", "gallery"]
    )
    pd.testing.assert_frame_equal(data.summary(), expected)
    # a file that is not an image is listed, not silently ignored
    assert [(pathlib.Path(p).name, r) for p, r in zip(data.skipped["path"], data.skipped["reason"])] == [
        ("notes.txt", "train: not an image file (suffix not one of ['.bmp', '.gif', '.jpeg', '.jpg', '.png', '.webp'])")
    ]


def test_market1501_root_is_data_folder_and_print_summary(tmp_path: pathlib.Path, capsys) -> None:
    make_tree(tmp_path, MARKET)
    data = load_dataset("market1501", tmp_path, verify=False)
    assert len(data.train) == 4 and len(data.gallery) == 4
    data.print_summary()
    out = capsys.readouterr().out
    assert "=> Loaded Market-1501" in out
    assert "  train    |     3 |        4 |         4" in out
    assert "  gallery  |     3 |        4 |         4" in out


def test_market1501_missing_folder_names_it(tmp_path: pathlib.Path) -> None:
    make_tree(tmp_path, {k: v for k, v in MARKET.items() if k != "bounding_box_test"})
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("market1501", tmp_path)
    message = str(error.value)
    assert message.startswith("Market-1501: expected folder 'bounding_box_test' under " + str(tmp_path))
    assert str(tmp_path / "Market-1501-v15.09.15") in message  # says where it looked
    # ... and what to do: a user error (one line, no traceback at the command line) with the layout to point at.
    assert isinstance(error.value, UserError)
    assert message.endswith(
        "give the folder that holds bounding_box_train/, query/, bounding_box_test/ (or its "
        "parent) as the data set root"
    )


def test_missing_root(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InputFileError, match="does not exist: give the folder that holds the data set"):
        load_dataset("duke", tmp_path / "nowhere")


def test_corrupt_and_misnamed_images_are_skipped_and_listed(tmp_path: pathlib.Path, caplog) -> None:
    make_tree(tmp_path, MARKET)
    (tmp_path / "bounding_box_test" / "0003_c2s1_000999_01.jpg").write_bytes(b"\x00garbage" * 20)
    (tmp_path / "query" / "0005_c2s1_000102_00.jpg").write_bytes(b"")
    write_image(tmp_path / "bounding_box_train" / "person.jpg")
    with caplog.at_level(logging.WARNING, logger="hacnn_tf.data.datasets"):
        data = load_dataset("market1501", tmp_path)
    assert len(data.gallery) == 4 and len(data.query) == 2 and len(data.train) == 4
    skipped = {pathlib.Path(p).name: reason for p, reason in zip(data.skipped["path"], data.skipped["reason"])}
    assert set(skipped) == {"0003_c2s1_000999_01.jpg", "0005_c2s1_000102_00.jpg", "person.jpg", "notes.txt"}
    assert skipped["0003_c2s1_000999_01.jpg"].startswith("unreadable image")
    assert "does not match" in skipped["person.jpg"]
    assert "skipped 4 file(s)" in caplog.text and "0003_c2s1_000999_01.jpg" in caplog.text
    # without verification the garbage file is listed, as the readers only list files
    assert len(load_dataset("market1501", tmp_path, verify=False).gallery) == 5


def test_verify_images(tmp_path: pathlib.Path) -> None:
    write_image(tmp_path / "good.png")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    df = pd.DataFrame(
        {"path": [str(tmp_path / "good.png"), str(tmp_path / "bad.jpg"), str(tmp_path / "gone.jpg")], "pid": [1, 2, 3]}
    )
    ok, skipped = verify_images(df)
    assert ok["pid"].tolist() == [1] and ok.index.tolist() == [0]
    assert [pathlib.Path(p).name for p in skipped["path"]] == ["bad.jpg", "gone.jpg"]
    assert list(skipped.columns) == ["path", "reason"]


def test_dukemtmcreid(tmp_path: pathlib.Path) -> None:
    make_tree(
        tmp_path / "DukeMTMC-reID",
        {
            "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg", "0005_c8_f0002000.jpg"],
            "query": ["0008_c1_f0000100.jpg"],
            "bounding_box_test": ["0008_c7_f0000500.jpg", "0009_c1_f0000600.jpg"],
        },
    )
    data = load_dataset("DukeMTMC-reID", tmp_path)
    assert data.name == "DukeMTMC-reID"
    assert rows(data.train, "pid", "orig_pid", "camid") == [
        ("0001_c2_f0046182.jpg", 0, 1, 1),
        ("0001_c5_f0051341.jpg", 0, 1, 4),
        ("0005_c8_f0002000.jpg", 1, 5, 7),
    ]
    assert rows(data.gallery, "pid", "camid") == [("0008_c7_f0000500.jpg", 8, 6), ("0009_c1_f0000600.jpg", 9, 0)]


# ------------------------------------------------------------------------------------------------------------
# MSMT17


@pytest.mark.parametrize(
    "version,train_dir,test_dir", [("MSMT17_V1", "train", "test"), ("MSMT17_V2", "mask_train_v2", "mask_test_v2")]
)
def test_msmt17(tmp_path: pathlib.Path, version: str, train_dir: str, test_dir: str) -> None:
    base = tmp_path / version
    lists = {
        "list_train.txt": (
            train_dir,
            [("0000/0000_000_01_0303morning_0015_0.jpg", 0), ("0001/0001_003_15_0303noon_0120_1.jpg", 1)],
        ),
        "list_val.txt": (train_dir, [("0002/0002_011_07_0303afternoon_0001_0.jpg", 2)]),
        "list_query.txt": (test_dir, [("0100/0100_000_02_0113morning_0002_0.jpg", 100)]),
        "list_gallery.txt": (
            test_dir,
            [("0100/0100_004_11_0113noon_0456_1.jpg", 100), ("0101/0101_001_03_0113noon_0400_0.jpg", 101)],
        ),
    }
    for list_name, (folder, entries) in lists.items():
        for relpath, _ in entries:
            write_image(base / folder / relpath)
        (base / list_name).write_text("".join(f"{relpath} {pid}\n" for relpath, pid in entries))

    data = load_dataset("msmt17", tmp_path)
    assert rows(data.train, "pid", "camid") == [
        ("0000_000_01_0303morning_0015_0.jpg", 0, 0),
        ("0001_003_15_0303noon_0120_1.jpg", 1, 14),
    ]
    assert rows(data.query, "pid", "camid") == [("0100_000_02_0113morning_0002_0.jpg", 100, 1)]
    assert rows(data.gallery, "pid", "camid") == [
        ("0100_004_11_0113noon_0456_1.jpg", 100, 10),
        ("0101_001_03_0113noon_0400_0.jpg", 101, 2),
    ]
    assert data.train["path"].str.contains(f"/{version}/{train_dir}/").all()
    assert data.gallery["path"].str.contains(f"/{version}/{test_dir}/").all()
    with_val = load_dataset("MSMT", tmp_path, msmt17_use_val=True)
    assert with_val.train["pid"].tolist() == [0, 1, 2] and with_val.train["camid"].tolist() == [0, 14, 6]
    assert load_dataset("msmt17", base).summary().loc["gallery", "images"] == 2  # the version folder as root


def test_msmt17_missing_lists(tmp_path: pathlib.Path) -> None:
    (tmp_path / "MSMT17_V1").mkdir()
    (tmp_path / "MSMT17_V1" / "list_train.txt").write_text("")
    with pytest.raises(
        FileNotFoundError, match="MSMT17: expected entries 'list_val.txt', 'list_query.txt', 'list_gallery.txt' under"
    ):
        load_dataset("msmt17", tmp_path)


# ------------------------------------------------------------------------------------------------------------
# User folder and CSV


def test_folder_layout_one_based_cameras(tmp_path: pathlib.Path) -> None:
    make_tree(
        tmp_path,
        {
            "train": ["12_c1_a.jpg", "12_c2_b.png", "40_c3_x.JPG", "-1_c1_junk.jpg", "readme.md"],
            "query": ["7_c1_q.png"],
            "gallery": ["7_c2_g.png", "0_c3_d.png", "bad-name.png"],
        },
    )
    data = load_dataset("folder", tmp_path)
    assert rows(data.train, "pid", "orig_pid", "camid") == [
        ("12_c1_a.jpg", 0, 12, 0),
        ("12_c2_b.png", 0, 12, 1),
        ("40_c3_x.JPG", 1, 40, 2),
    ]
    assert rows(data.gallery, "pid", "camid") == [("0_c3_d.png", 0, 2), ("7_c2_g.png", 7, 1)]
    assert sorted(pathlib.Path(p).name for p in data.skipped["path"]) == ["bad-name.png", "readme.md"]


def test_folder_layout_zero_based_cameras_kept(tmp_path: pathlib.Path) -> None:
    make_tree(tmp_path, {"train": ["1_c0_a.jpg", "1_c1_b.jpg"], "query": ["2_c0_q.jpg"], "gallery": ["2_c3_g.jpg"]})
    data = load_dataset("custom", tmp_path)
    assert data.train["camid"].tolist() == [0, 1] and data.gallery["camid"].tolist() == [3]


def test_folder_missing_subfolder(tmp_path: pathlib.Path) -> None:
    make_tree(tmp_path, {"train": ["1_c1_a.jpg"], "query": ["2_c1_q.jpg"]})
    with pytest.raises(FileNotFoundError, match="folder: expected folder 'gallery' under"):
        load_dataset("folder", tmp_path)


def test_csv(tmp_path: pathlib.Path) -> None:
    for name in ["a.jpg", "b.jpg", "q.jpg", "g.jpg", "junk.jpg"]:
        write_image(tmp_path / "imgs" / name)
    outside = tmp_path / "elsewhere" / "d.png"
    write_image(outside)
    (tmp_path / "meta").mkdir()
    csv = tmp_path / "meta" / "data.csv"
    csv.write_text(
        "path,pid,camid,split\n"
        "../imgs/a.jpg,30,1,train\n../imgs/b.jpg,10,2,Train\n../imgs/q.jpg,5,1,query\n"
        f"../imgs/g.jpg,5,2,gallery\n{outside},0,3,gallery\n../imgs/junk.jpg,-1,1,gallery\n"
    )
    data = load_dataset("csv", csv)
    assert rows(data.train, "pid", "orig_pid", "camid") == [("a.jpg", 1, 30, 0), ("b.jpg", 0, 10, 1)]
    assert rows(data.gallery, "pid", "camid") == [("d.png", 0, 2), ("g.jpg", 5, 1)]
    assert data.query["path"].tolist() == [str(tmp_path / "imgs" / "q.jpg")]


def test_csv_errors(tmp_path: pathlib.Path) -> None:
    bad_split = tmp_path / "bad_split.csv"
    bad_split.write_text("path,pid,camid,split\na.jpg,1,0,test\n")
    with pytest.raises(DataError, match=r"split value\(s\) \['test'\]"):
        load_dataset("folder", bad_split)
    no_cam = tmp_path / "no_cam.csv"
    no_cam.write_text("path,pid,split\na.jpg,1,train\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['camid'\]"):
        load_dataset("folder", no_cam)


# ------------------------------------------------------------------------------------------------------------
# CUHK03


def write_cuhk03_mat(path: pathlib.Path, people: int = 3, pairs: int = 2) -> dict[str, np.ndarray]:
    """A tiny cuhk-03.mat in MATLAB v7.3 layout: `labeled`/`detected` are 1 x pairs cells of references to
    persons x 10 cells of image references, every array stored transposed. Person k of each pair has images
    0, 1 (view 1) and 5, 6 (view 2); the other cells are empty. Returns the written images by file name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ref = h5py.special_dtype(ref=h5py.Reference)
    images = {}
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        for kind_index, kind in enumerate(("detected", "labeled")):
            pair_refs = np.empty((1, pairs), dtype=ref)
            for pair in range(pairs):
                cells = np.empty((10, people), dtype=ref)  # MATLAB persons x 10, stored transposed
                for person in range(people):
                    for index in range(10):
                        name = f"{kind}_{pair}_{person}_{index}"
                        if index in (0, 1, 5, 6):
                            image = np.full((6, 4, 3), 10 * kind_index, np.uint8)  # H x W x 3, H != W
                            image[0, 0] = (pair, person, index)
                            view = 1 if index < 5 else 2
                            images[f"{kind}/{pair + 1}_{person + 1:03d}_{view}_{index + 1:02d}.png"] = image
                            cells[index, person] = refs.create_dataset(name, data=image.T).ref
                        else:
                            cells[index, person] = refs.create_dataset(name, data=np.zeros(2, np.uint64)).ref
                pair_refs[0, pair] = refs.create_dataset(f"{kind}_{pair}", data=cells).ref
            f.create_dataset(kind, data=pair_refs)
    return images


def cuhk03_split(people: int = 3, pairs: int = 2) -> dict[str, object]:
    """A new-protocol style split: pair 1's persons train, pair 2's test (view-1 image 1 as query)."""
    filelist, labels = [], []
    for pair in range(1, pairs + 1):
        for person in range(1, people + 1):
            for index in (1, 2, 6, 7):
                filelist.append(f"{pair}_{person:03d}_{1 if index <= 5 else 2}_{index:02d}.png")
                labels.append(100 * pair + person)
    n_train = 4 * people
    query = [n_train + 4 * k + 1 for k in range(people)]  # 1-based, the first image of each test person
    gallery = [i for i in range(n_train + 1, len(filelist) + 1) if i not in query]
    return {
        "filelist": filelist,
        "labels": np.array(labels, float),
        "camId": np.ones(len(filelist)),
        "train_idx": np.arange(1, n_train + 1, dtype=float),
        "query_idx": np.array(query, float),
        "gallery_idx": np.array(gallery, float),
    }


def write_split_hdf5(path: pathlib.Path, split: dict[str, object]) -> None:
    """The split config as MATLAB v7.3 writes it (column vectors stored as 1 x N, chars as uint16)."""
    ref = h5py.special_dtype(ref=h5py.Reference)
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        names = np.empty((1, len(split["filelist"])), dtype=ref)
        for i, name in enumerate(split["filelist"]):
            names[0, i] = refs.create_dataset(f"n{i}", data=np.array([[ord(c)] for c in name], np.uint16)).ref
        f.create_dataset("filelist", data=names)
        for key, value in split.items():
            if key != "filelist":
                f.create_dataset(key, data=np.asarray(value)[None, :])


def mat5_element(mi_type: int, payload: bytes) -> bytes:
    if len(payload) <= 4 and mi_type != 14:  # small data element format
        return struct.pack("<HH", mi_type, len(payload)) + payload.ljust(4, b"\0")
    return struct.pack("<II", mi_type, len(payload)) + payload + b"\0" * (-len(payload) % 8)


def mat5_matrix(name: str, value: object) -> bytes:
    """One MATLAB v5 miMATRIX: a str (char row), a list (cell column of values) or a numeric vector (column)."""
    if isinstance(value, str):
        mx_class, dims = 4, (1, len(value))
        data = mat5_element(4, np.array([ord(c) for c in value], "<u2").tobytes())
    elif isinstance(value, list):
        mx_class, dims = 1, (len(value), 1)
        data = b"".join(mat5_matrix("", v) for v in value)
    else:
        mx_class, dims = 6, (len(value), 1)
        data = mat5_element(9, np.asarray(value, "<f8").tobytes())
    body = (
        mat5_element(6, struct.pack("<II", mx_class, 0))
        + mat5_element(5, struct.pack("<ii", *dims))
        + mat5_element(1, name.encode())
        + data
    )
    return mat5_element(14, body)


def write_split_mat5(path: pathlib.Path, split: dict[str, object], compress: bool) -> None:
    """The split config as a MATLAB v5 (`compress=False`) or v7 (zlib-compressed variables) file."""
    header = b"MATLAB 5.0 MAT-file, written by a test".ljust(116) + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    variables = []
    for key, value in split.items():
        element = mat5_matrix(key, list(value) if key == "filelist" else value)
        variables.append(struct.pack("<II", 15, len(z := zlib.compress(element))) + z if compress else element)
    path.write_bytes(header + b"".join(variables))


@pytest.mark.parametrize("split_format", ["hdf5", "mat5", "mat7"])
def test_cuhk03_new_protocol(tmp_path: pathlib.Path, split_format: str) -> None:
    images = write_cuhk03_mat(tmp_path / "cuhk03_release" / "cuhk-03.mat")
    for kind in ("detected", "labeled"):
        path = tmp_path / f"cuhk03_new_protocol_config_{kind}.mat"
        if split_format == "hdf5":
            write_split_hdf5(path, cuhk03_split())
        else:
            write_split_mat5(path, cuhk03_split(), compress=split_format == "mat7")

    data = load_dataset("cuhk03", tmp_path)
    assert data.summary().to_dict("index") == {
        "train": {"ids": 3, "images": 12, "cameras": 2},
        "query": {"ids": 3, "images": 3, "cameras": 1},
        "gallery": {"ids": 3, "images": 9, "cameras": 2},
    }
    assert rows(data.train, "pid", "orig_pid", "camid")[:4] == [
        ("1_001_1_01.png", 0, 101, 0),
        ("1_001_1_02.png", 0, 101, 0),
        ("1_001_2_06.png", 0, 101, 1),
        ("1_001_2_07.png", 0, 101, 1),
    ]
    assert rows(data.query, "pid", "camid") == [
        ("2_001_1_01.png", 201, 0),
        ("2_002_1_01.png", 202, 0),
        ("2_003_1_01.png", 203, 0),
    ]
    cache = tmp_path / "images_detected"
    assert sorted(p.name for p in cache.iterdir()) == sorted(n.split("/")[1] for n in images if "detected" in n)
    for name in ("1_002_2_07.png", "2_003_1_02.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(cache / name)), images[f"detected/{name}"])
    assert not (tmp_path / "images_labeled").exists()

    # the cache is reused: the raw file is no longer needed
    (tmp_path / "cuhk03_release" / "cuhk-03.mat").unlink()
    again = load_dataset("CUHK-03", tmp_path)
    pd.testing.assert_frame_equal(again.gallery, data.gallery)
    with pytest.raises(FileNotFoundError, match="CUHK03: expected file 'cuhk03_release/cuhk-03.mat'"):
        load_dataset("cuhk03", tmp_path, cuhk03_labeled=True)


def test_cuhk03_labeled(tmp_path: pathlib.Path) -> None:
    images = write_cuhk03_mat(tmp_path / "cuhk03" / "cuhk03_release" / "cuhk-03.mat")
    write_split_hdf5(tmp_path / "cuhk03" / "cuhk03_new_protocol_config_labeled.mat", cuhk03_split())
    data = load_dataset("cuhk03", tmp_path, cuhk03_labeled=True)
    first = data.gallery["path"].iloc[0]
    assert pathlib.Path(first).parent == tmp_path / "cuhk03" / "images_labeled"
    np.testing.assert_array_equal(np.asarray(Image.open(first)), images["labeled/" + pathlib.Path(first).name])
    assert not list(tmp_path.glob("cuhk03/*.tmp-*"))  # the extraction folder was renamed into place


def test_cuhk03_not_a_mat_file(tmp_path: pathlib.Path) -> None:
    write_cuhk03_mat(tmp_path / "cuhk03_release" / "cuhk-03.mat")
    (tmp_path / "cuhk03_new_protocol_config_detected.mat").write_text("hello")
    with pytest.raises(ValueError, match="neither a MATLAB v5/v7 file nor an HDF5"):
        load_dataset("cuhk03", tmp_path)


# ------------------------------------------------------------------------------------------------------------
# Names, options, imports


def test_names_and_options(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="unknown data set 'viper'"):
        load_dataset("viper", tmp_path)
    make_tree(tmp_path, MARKET)
    with pytest.raises(TypeError, match="unknown option"):
        load_dataset("market1501", tmp_path, cuhk03_labeled=True)
    for alias in ("market", "Market1501", "market_1501"):
        assert load_dataset(alias, tmp_path, verify=False).name == "Market-1501"
    assert datasets.DATASET_NAMES == ("market1501", "dukemtmcreid", "msmt17", "cuhk03", "folder")


def test_data_modules_do_not_import_tensorflow() -> None:
    code = (
        "import importlib.util, sys\n"
        "for name in ('datasets', 'synthetic'):\n"
        f"    spec = importlib.util.spec_from_file_location(name, r'{REPO}/hacnn_tf/data/' + name + '.py')\n"
        "    module = importlib.util.module_from_spec(spec); sys.modules[name] = module\n"
        "    spec.loader.exec_module(module)\n"
        "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules), 'tensorflow imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
