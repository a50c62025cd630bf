"""A run resumes only on the data set it trained on: its backup records the data's fingerprint (reader, folder,
identity and image counts, a hash of the sorted training files and labels), and a rerun against other data is
refused before anything is written, in one line naming both data sets and how to start over."""

from __future__ import annotations

import pathlib
import re
import shutil

import pytest
from conftest import TINY_MODEL

from hacnn_tf.config import load_config
from hacnn_tf.data.datasets import load_dataset
from hacnn_tf.data.synthetic import generate
from hacnn_tf.errors import ConfigError
from hacnn_tf.run_folder import data_fingerprint, open_run
from hacnn_tf.trainer import fit

SYNTHETIC = dict(num_test_ids=6, num_cameras=3, images_per_id_per_camera=2, num_distractors=4, num_junk=2)


def run_config(run_dir: pathlib.Path, root: pathlib.Path, epochs: int):
    return load_config(
        None,
        [
            f"output.dir={run_dir}",
            f"data.root={root}",
            f"train.epochs={epochs}",
            "train.batch_size=8",
            "eval.every=0",
            "output.tensorboard=false",
            *(f"model.{k}={v}" for k, v in TINY_MODEL.items()),
        ],
    )


def contents(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_run_is_not_resumed_on_another_data_set(tmp_path, tiny_synthetic):
    data_a = pathlib.Path(tiny_synthetic.train["path"].iloc[0]).parent.parent
    identities = tiny_synthetic.num_train_pids
    # Same layout and identity count, other people; and a set with fewer identities.
    data_b = generate(tmp_path / "b", num_train_ids=identities, seed=11, **SYNTHETIC)
    data_c = generate(tmp_path / "c", num_train_ids=identities - 2, seed=12, **SYNTHETIC)
    run_dir = tmp_path / "run"
    fit(run_config(run_dir, data_a, 1), verbose=0)
    before = contents(run_dir)

    # Continuing it (train.epochs 1 -> 2) on B: refused, naming both data sets and how to start over.
    with pytest.raises(ConfigError) as refused:
        fit(run_config(run_dir, data_b, 2), verbose=0)
    message = str(refused.value)
    assert "\n" not in message
    name = re.escape(tiny_synthetic.name)  # a synthetic set says so: "synthetic (Market-1501 layout)"
    assert tiny_synthetic.name == "synthetic (Market-1501 layout)"
    assert re.search(
        rf"holds a run trained on other data: {name} at {re.escape(str(data_a.resolve()))} "
        rf"\({identities} identities, 48 training images, files sha256 [0-9a-f]{{12}}\); now {name} "
        rf"at {re.escape(str(data_b.resolve()))} \({identities} identities",
        message,
    ), message
    assert f"rerun with data.root={data_a.resolve()}" in message and "--overwrite" in message
    assert "another output.dir" in message

    # On C, whose identity count differs: refused naming both counts, not a weight-loading error.
    with pytest.raises(
        ConfigError,
        match=rf"holds a run trained on {identities} identities \(.*\), but this data "
        rf"set has {identities - 2} \(.*\): a run resumes only on the data it "
        rf"trained on; rerun with data.root=.*--overwrite",
    ):
        fit(run_config(run_dir, data_c, 2), verbose=0)
    assert contents(run_dir) == before  # nothing written by the refused runs

    # The same files in another folder are the same data: the run resumes from its backup.
    moved = shutil.copytree(data_a, tmp_path / "moved")
    config = run_config(run_dir, moved, 2)
    fingerprint = data_fingerprint(load_dataset("market1501", moved), moved)
    assert fingerprint.same_data(data_fingerprint(tiny_synthetic)) and fingerprint.root != str(data_a.resolve())
    with open_run(config, fingerprint) as run:
        assert run.initial_epoch == 1
