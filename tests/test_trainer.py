import numpy as np
import pandas as pd
import pytest
import keras

from conftest import TINY_MODEL
from hacnn_tf.trainer import fit, load_config


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
    last = keras.saving.load_model(tmp_path / "last.keras")
    images = np.random.default_rng(0).normal(size=(2, 64, 32, 3)).astype("float32")
    np.testing.assert_allclose(last(images), model(images), atol=1e-6)


class Crash(keras.callbacks.Callback):
    """Simulates the process being killed in the middle of an epoch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt("killed")


def test_resume_after_a_crash_mid_epoch_ends_like_an_uninterrupted_run(tmp_path, tiny_synthetic):
    config = tiny_config(tmp_path / "a", **{"train.epochs": 3, "eval.every": 0, "loss.triplet": "true",
                                            "train.num_instances": 2})
    reference, _ = fit(config, tiny_synthetic, verbose=0)

    config = tiny_config(tmp_path / "b", **{"train.epochs": 3, "eval.every": 0, "loss.triplet": "true",
                                            "train.num_instances": 2})
    with pytest.raises(KeyboardInterrupt):
        fit(config, tiny_synthetic, verbose=0, extra_callbacks=[Crash(epoch=1, batch=2)])
    assert (tmp_path / "b" / "backup" / "training_metadata.json").is_file()
    resumed, history = fit(config, tiny_synthetic, verbose=0)
    assert history.epoch == [1, 2]  # epoch 0 was not trained again
    for a, b in zip(reference.weights, resumed.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, err_msg=a.path)
    assert not (tmp_path / "b" / "backup").exists()  # removed once training finished
