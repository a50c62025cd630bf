"""Bad data is skipped and listed at load time, never a crash in the pipeline: files PIL opens but TensorFlow does not
decode, PNGs in a Market-1501 layout, malformed CSV tables, an empty training split."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest
from PIL import Image

from hacnn_tf.data import load_dataset
from hacnn_tf.data.pipeline import make_eval_dataset, make_train_dataset

MARKET_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def person(value: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(value).integers(0, 256, (32, 16, 3), dtype=np.uint8))


def market_tree(root: pathlib.Path, suffix: str = ".jpg", fmt: str = "JPEG", ids=(1, 2, 3, 4)) -> None:
    """Two images per identity in training, one query and one gallery image per identity."""
    for folder in MARKET_FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for pid in ids:
        for cam in (1, 2):
            person(10 * pid + cam).save(root / "bounding_box_train" / f"{pid:04d}_c{cam}s1_000001_00{suffix}", fmt)
        person(100 + pid).save(root / "query" / f"{100 + pid:04d}_c1s1_000001_00{suffix}", fmt)
        person(200 + pid).save(root / "bounding_box_test" / f"{100 + pid:04d}_c2s1_000001_00{suffix}", fmt)


def pil_verifies(path: pathlib.Path) -> bool:
    with Image.open(path) as image:
        image.verify()
    return True


def test_files_pil_opens_but_tensorflow_refuses_are_skipped_and_listed(tmp_path):
    market_tree(tmp_path)
    jpeg = encode(person(0), "JPEG")
    scan = jpeg.index(b"\xff\xda")
    bad = {
        "bounding_box_train/0001_c3s1_000001_00.jpg": jpeg[: (scan + len(jpeg)) // 2],  # truncated in the scan
        "bounding_box_train/0002_c3s1_000001_00.bmp": encode(person(1).convert("1"), "BMP"),  # 1 bit per pixel
        "bounding_box_test/0101_c3s1_000001_00.jpg": encode(person(2), "TIFF"),  # TIFF named .jpg
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        assert pil_verifies(tmp_path / name)
    data = load_dataset("market1501", tmp_path)
    reasons = {pathlib.Path(p).name: r for p, r in zip(data.skipped["path"], data.skipped["reason"])}
    assert set(reasons) == {pathlib.Path(name).name for name in bad}
    assert "jpeg::Uncompress failed" in reasons["0001_c3s1_000001_00.jpg"]
    assert "BMP not decodable" in reasons["0002_c3s1_000001_00.bmp"]
    assert "Unknown image file format" in reasons["0101_c3s1_000001_00.jpg"]
    assert all(reason.startswith("unreadable image: InvalidArgumentError") for reason in reasons.values())
    assert len(data.train) == 8 and len(data.gallery) == 4
    # every remaining image goes through training and evaluation batches
    train = make_train_dataset(data.train, (32, 16), 4, ["y"], epochs=2)
    assert sum(1 for _ in train) == 4
    for split in (data.query, data.gallery):
        assert sum(len(batch) for batch in make_eval_dataset(split, (32, 16), batch_size=3)) == len(split)


def test_pngs_in_a_market_layout_are_read(tmp_path):
    market_tree(tmp_path, ids=(1, 2))
    market_tree(tmp_path, ".png", "PNG", ids=(3, 4))
    data = load_dataset("market1501", tmp_path)
    assert data.num_train_pids == 4 and len(data.train) == 8
    assert data.train["path"].str.endswith(".png").sum() == 4 and data.skipped.empty


def write_csv(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        person(len(name)).save(tmp_path / name)
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_csv_float_ids_empty_cells_and_empty_files_are_refused_with_the_line(tmp_path):
    header = "path,pid,camid,split\n"
    cases = {
        header
        + "a.jpg,1,0,train\nb.jpg,1.7,1,train\nc.jpg,1.2,0,train\n": r"line 3: pid '1.7' is not an integer \(a fractional id would be truncated and merge identities\)",  # noqa: E501
        header + "a.jpg,1,0,train\nb.jpg,,1,train\n": "line 3: empty pid cell",
        header + "a.jpg,1,0,train\n\nb.jpg,2,1,train\nc.jpg,3,,query\n": r"line 5: empty camid cell \(1 row",
        header + "a.jpg,1,0.5,train\n": "line 2: camid '0.5' is not an integer",
        "": "is empty; expected a header line path,pid,camid,split",
    }
    for text, message in cases.items():
        with pytest.raises(ValueError, match=message):
            load_dataset("csv", write_csv(tmp_path, text))
    # blank lines and spaces around cells are fine
    data = load_dataset("csv", write_csv(tmp_path, header + "a.jpg, 7 ,1,train\n\n b.jpg,8,2, Train \n"))
    assert data.train["orig_pid"].tolist() == [7, 8] and data.train["camid"].tolist() == [0, 1]


def test_an_empty_training_split_says_so(tmp_path):
    from hacnn_tf.trainer import fit, load_config

    data = load_dataset("csv", write_csv(tmp_path, "path,pid,camid,split\na.jpg,1,0,query\nb.jpg,1,1,gallery\n"))
    assert data.train.empty and len(data.query) == 1  # an evaluation-only table loads
    with pytest.raises(ValueError, match=r"folder: no training images \(the train split is empty\)"):
        _ = data.num_train_pids
    config = load_config(None, [f"output.dir={tmp_path / 'run'}", "output.tensorboard=false"])
    with pytest.raises(ValueError, match="training images"):  # not a classifier of 0 classes
        fit(config, data, verbose=0)
