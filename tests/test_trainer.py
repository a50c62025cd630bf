import json
import pathlib
import signal
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import TINY_MODEL
from hacnn_tf.trainer import build_optimizer, fit, load_config

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "training" / "configs"


def tiny_config(tmp_path, **sections):
    overrides = [f"output.dir={tmp_path}", "train.epochs=2", "train.batch_size=8", "eval.every=1",
                 "output.tensorboard=false", "optimizer.learning_rate=0.001", "schedule.milestones=[0.5]",
                 *(f"model.{k}={v}" for k, v in TINY_MODEL.items())]
    overrides += [f"{k}={v}" for k, v in sections.items()]
    return load_config(None, overrides)


def test_load_config_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7\noptimizer:\n  name: sgd\n")
    config = load_config(path, ["optimizer.learning_rate=0.03", "model.input_size=[256, 128]"])
    assert config["train"]["epochs"] == 7 and config["train"]["batch_size"] == 32  # defaults kept
    assert config["optimizer"] == {**config["optimizer"], "name": "sgd", "learning_rate": 0.03}
    assert config["model"]["input_size"] == [256, 128]
    with pytest.raises(ValueError, match="Unknown config field 'train.epoch'"):
        load_config(None, ["train.epoch=3"])
    with pytest.raises(FileNotFoundError, match="nothere.yaml"):
        load_config(tmp_path / "nothere.yaml")


def test_fit_logs_reid_metrics_and_writes_checkpoints(tmp_path, tiny_synthetic):
    model, history = fit(tiny_config(tmp_path), tiny_synthetic, verbose=0)
    logs = history.history
    assert len(logs["loss"]) == 2 and logs["loss"][1] < logs["loss"][0]
    assert {"val_mAP", "val_rank1", "val_rank5", "val_rank10", "val_rank20"} <= set(logs)
    assert all(0.0 <= v <= 1.0 for v in logs["val_mAP"])
    assert {p.name for p in tmp_path.iterdir()} >= {"best.keras", "last.keras", "training_log.csv", "config.yaml"}
    log = pd.read_csv(tmp_path / "training_log.csv")
    np.testing.assert_allclose(log["val_mAP"], logs["val_mAP"])
    np.testing.assert_allclose(log["learning_rate"], [1e-3, 1e-4], rtol=1e-6)  # x0.1 at 50% of the epochs
    images = np.random.default_rng(0).normal(size=(2, 64, 32, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    # A compiled checkpoint (custom losses, optimizer state) loads in a fresh process after `import hacnn_tf`.
    script = ("import sys, keras, numpy as np, hacnn_tf; m = keras.saving.load_model(sys.argv[1]); "
              "np.save(sys.argv[3], np.asarray(m(np.load(sys.argv[2]))))")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "last.keras"), str(tmp_path / "images.npy"),
                    str(tmp_path / "out.npy")], check=True)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model(images), atol=1e-6)


KILLED_RUN = """
import os, signal, sys
import keras
from hacnn_tf.data import load_dataset
from hacnn_tf.trainer import fit, load_config

class Kill(keras.callbacks.Callback):
    # SIGKILL in the middle of the second epoch: no cleanup, no exception handler runs.
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 2:
            os.kill(os.getpid(), signal.SIGKILL)

fit(load_config(None, sys.argv[2:]), load_dataset("market1501", sys.argv[1]), verbose=0, extra_callbacks=[Kill()])
"""


def test_resume_after_kill_mid_epoch_ends_like_an_uninterrupted_run(tmp_path, tiny_synthetic):
    overrides = {"train.epochs": 3, "eval.every": 0, "loss.triplet": "true", "train.num_instances": 2}
    reference, _ = fit(tiny_config(tmp_path / "a", **overrides), tiny_synthetic, verbose=0)

    config = tiny_config(tmp_path / "b", **overrides)
    arguments = [f"output.dir={tmp_path / 'b'}", *(f"{k}={v}" for k, v in overrides.items()),
                 *(f"model.{k}={v}" for k, v in TINY_MODEL.items()), "train.batch_size=8",
                 "output.tensorboard=false", "optimizer.learning_rate=0.001", "schedule.milestones=[0.5]"]
    root = pathlib.Path(tiny_synthetic.train["path"].iloc[0]).parent.parent
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(root), *arguments], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert json.loads((tmp_path / "b" / "backup" / "training_metadata.json").read_text())["epoch"] == 1

    resumed, history = fit(config, tiny_synthetic, verbose=0)
    assert history.epoch == [1, 2]  # epoch 0 is not trained again
    for a, b in zip(reference.weights, resumed.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, err_msg=a.path)
    assert not (tmp_path / "b" / "backup").exists()  # removed once training finished
    assert len(pd.read_csv(tmp_path / "b" / "training_log.csv")) == 3  # the killed epoch is not logged twice


def test_every_shipped_config_resolves(tmp_path):
    configs = sorted(CONFIGS.glob("*.yaml"))
    assert len(configs) == 17
    for path in configs:
        load_config(path)
    market = load_config(CONFIGS / "market1501_reference_softmax.yaml")
    assert market["optimizer"]["name"] == "sgd" and market["optimizer"]["learning_rate"] == 0.03
    assert market["train"]["epochs"] == 300 and market["schedule"]["milestones"] == [0.5, 0.75]
    paper = load_config(CONFIGS / "cuhk03_paper_softmax_triplet.yaml")
    assert (paper["optimizer"]["name"], paper["optimizer"]["learning_rate"], paper["train"]["epochs"]) == (
        "adam", 0.0005, 150)
    assert paper["loss"]["triplet"] and paper["train"]["num_instances"] == 4
    assert paper["data"] == {"name": "cuhk03", "root": None, "options": {"cuhk03_labeled": False}}
    # The multistep schedule in steps: x0.1 at epochs 150 and 225 of 300.
    optimizer = build_optimizer(market, steps_per_epoch=10, epochs=300)
    rates = []
    for step in (0, 1499, 1500, 2249, 2250):
        optimizer.iterations.assign(step)
        rates.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
    np.testing.assert_allclose(rates, [0.03, 0.03, 0.003, 0.003, 0.0003], rtol=1e-6)
