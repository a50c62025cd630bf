import dataclasses
import logging
import pathlib
import signal
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MODEL

from hacnn_tf.callbacks import checkpoint_info, committed_backups
from hacnn_tf.config import load_config
from hacnn_tf.trainer import build_optimizer, fit

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "training" / "configs"


def tiny_config(tmp_path, **sections):
    overrides = [
        f"output.dir={tmp_path}",
        "train.epochs=2",
        "train.batch_size=8",
        "eval.every=1",
        "output.tensorboard=false",
        "optimizer.learning_rate=0.001",
        "schedule.milestones=[0.5]",
        *(f"model.{k}={v}" for k, v in TINY_MODEL.items()),
    ]
    overrides += [f"{k}={v}" for k, v in sections.items()]
    return load_config(None, overrides)


def test_load_config_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7\noptimizer:\n  name: sgd\n")
    config = load_config(path, ["optimizer.learning_rate=0.03", "model.input_size=[256, 128]"])
    assert config.train.epochs == 7 and config.train.batch_size == 32  # defaults kept
    assert config.optimizer == dataclasses.replace(config.optimizer, name="sgd", learning_rate=0.03)
    assert config.model.input_size == (256, 128)
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
    assert backups(tmp_path) == ["epoch-000002"]  # kept: the run is finished, more train.epochs would continue it
    log = pd.read_csv(tmp_path / "training_log.csv")
    assert log["epoch"].tolist() == [1, 2]  # numbered as the console and the figures number epochs
    np.testing.assert_allclose(log["val_mAP"], logs["val_mAP"], rtol=1e-6)  # the log keeps 7 significant digits
    np.testing.assert_allclose(log["learning_rate"], [1e-3, 1e-4], rtol=1e-6)  # x0.1 at 50% of the epochs
    images = np.random.default_rng(0).normal(size=(2, 64, 32, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    # A compiled checkpoint (custom losses, optimizer state) loads in a fresh process after `import hacnn_tf`.
    script = (
        "import sys, keras, numpy as np, hacnn_tf; m = keras.saving.load_model(sys.argv[1]); "
        'np.save(sys.argv[3], np.asarray(m(np.load(sys.argv[2]))["embedding"]))'
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "last.keras"),
            str(tmp_path / "images.npy"),
            str(tmp_path / "out.npy"),
        ],
        check=True,
    )
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model(images)["embedding"], atol=1e-6)


KILLED_RUN = """
import os, signal, sys
import keras
from hacnn_tf.data import load_dataset
from hacnn_tf.config import load_config
from hacnn_tf.trainer import fit

where, root, *overrides = sys.argv[1:]

class KillMidEpoch(keras.callbacks.Callback):
    # SIGKILL in the middle of the second epoch: no cleanup, no exception handler runs.
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 2:
            os.kill(os.getpid(), signal.SIGKILL)

if where.startswith("commit:"):
    # SIGKILL at the rename that would commit the backup of that epoch, once its checkpoints and CSV row are written.
    rename, unit = os.rename, f"epoch-{int(where[7:]):06d}"

    def kill_at_commit(source, target, *args, **kwargs):
        if os.path.basename(target) == unit:
            os.kill(os.getpid(), signal.SIGKILL)
        return rename(source, target, *args, **kwargs)

    os.rename = kill_at_commit
fit(load_config(None, overrides), load_dataset("market1501", root), verbose=0,
    extra_callbacks=[KillMidEpoch()] if where == "mid-epoch" else [])
"""


def backups(run_dir):
    return [path.name for path in committed_backups(run_dir / "backup")]


def test_killed_runs_resume_finish_and_continue_to_an_uninterrupted_runs_weights(tmp_path, tiny_synthetic, caplog):
    # Milestones in epochs, so that 2 epochs continued to 3 follow the schedule of 3 epochs from the start.
    overrides = {"eval.every": 0, "loss.triplet": "true", "train.num_instances": 2, "schedule.milestones": "[2]"}
    reference, _ = fit(tiny_config(tmp_path / "a", **overrides, **{"train.epochs": 3}), tiny_synthetic, verbose=0)

    run = tmp_path / "b"
    arguments = [
        f"output.dir={run}",
        "train.epochs=2",
        *(f"{k}={v}" for k, v in overrides.items()),
        *(f"model.{k}={v}" for k, v in TINY_MODEL.items()),
        "train.batch_size=8",
        "output.tensorboard=false",
        "optimizer.learning_rate=0.001",
    ]
    root = pathlib.Path(tiny_synthetic.train["path"].iloc[0]).parent.parent

    def killed(where):
        result = subprocess.run(
            [sys.executable, "-c", KILLED_RUN, where, str(root), *arguments], capture_output=True, text=True
        )
        assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]

    # 1. A run of 2 epochs, SIGKILLed in the middle of epoch 2: its backup holds epoch 1.
    killed("mid-epoch")
    assert backups(run) == ["epoch-000001"]
    # 2. Resumed, and SIGKILLed at the commit of epoch 2, the last: best.keras, last.keras and the CSV row of epoch 2
    # are written, its backup is not (the weights of epoch 2 never go with the epoch count of epoch 1).
    killed("commit:2")
    assert backups(run) == ["epoch-000001"]
    assert checkpoint_info(run / "best.keras")["epoch"] == 2 and len(pd.read_csv(run / "training_log.csv")) == 2
    # 3. Resumed: epoch 2 again, from the backup of epoch 1; the killed epoch is logged once and the best threshold
    # is the mAP of the best.keras on disk.
    finished = tiny_config(run, **overrides)
    _, history = fit(finished, tiny_synthetic, verbose=0)
    assert history.epoch == [1]
    log = pd.read_csv(run / "training_log.csv")
    assert log["epoch"].tolist() == [1, 2]
    assert checkpoint_info(run / "best.keras")["value"] == pytest.approx(log["val_mAP"].max(), abs=1e-6)
    assert backups(run) == ["epoch-000002"] and not [p for p in run.rglob(".*")]  # the staging folder is gone
    # 4. Rerun: nothing to do, and it says so.
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with caplog.at_level(logging.WARNING, logger="hacnn_tf.trainer"):
        _, history = fit(finished, tiny_synthetic, verbose=0)
    assert "holds a finished run of 2 epochs (train.epochs: 2): nothing to train" in caplog.text
    assert history.epoch == [0, 1] and {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    # 5. With train.epochs=3 it continues with epoch 3 only, and ends with the uninterrupted run's weights.
    resumed, history = fit(tiny_config(run, **overrides, **{"train.epochs": 3}), tiny_synthetic, verbose=0)
    assert history.epoch == [2]
    for a, b in zip(reference.weights, resumed.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, err_msg=a.path)
    assert pd.read_csv(run / "training_log.csv")["epoch"].tolist() == [1, 2, 3]
    assert backups(run) == ["epoch-000003"]


def test_every_shipped_config_resolves(tmp_path):
    configs = sorted(CONFIGS.glob("*.yaml"))
    assert len(configs) == 17
    for path in configs:
        load_config(path)
    market = load_config(CONFIGS / "market1501_reference_softmax.yaml")
    assert market.optimizer.name == "sgd" and market.optimizer.learning_rate == 0.03
    assert market.train.epochs == 300 and market.schedule.milestones == (0.5, 0.75)
    paper = load_config(CONFIGS / "cuhk03_paper_softmax_triplet.yaml")
    assert (paper.optimizer.name, paper.optimizer.learning_rate, paper.train.epochs) == ("adam", 0.0005, 150)
    assert paper.loss.triplet and paper.train.num_instances == 4
    assert paper.to_dict()["data"] == {"name": "cuhk03", "root": None, "options": {"cuhk03_labeled": False}}
    # The multistep schedule in steps: x0.1 at epochs 150 and 225 of 300.
    optimizer = build_optimizer(market, steps_per_epoch=10, epochs=300)
    rates = []
    for step in (0, 1499, 1500, 2249, 2250):
        optimizer.iterations.assign(step)
        rates.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
    np.testing.assert_allclose(rates, [0.03, 0.03, 0.003, 0.003, 0.0003], rtol=1e-6)


def tensorboard_scalars(folder: pathlib.Path) -> dict[tuple[str, str, int], float]:
    """`{(writer, tag, step): value}` of the scalar summaries in the event files under `folder`."""
    import tensorflow as tf

    scalars = {}
    for path in folder.rglob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                scalars[path.parent.name, value.tag, event.step] = float(tf.make_ndarray(value.tensor))
    return scalars


def test_a_packaged_paper_recipe_trains_as_shipped_and_logs_to_tensorboard(tmp_path, tiny_synthetic):
    # The README's command on the synthetic set: the recipe as shipped (TensorBoard on), made small only in size.
    recipe = CONFIGS / "market1501_paper_softmax.yaml"
    assert load_config(recipe).output.tensorboard
    root = pathlib.Path(tiny_synthetic.train["path"].iloc[0]).parent.parent
    overrides = [
        f"data.root={root}",
        f"output.dir={tmp_path / 'run'}",
        "train.epochs=1",
        "train.batch_size=8",
        *(f"model.{k}={v}".replace(" ", "") for k, v in TINY_MODEL.items()),
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hacnn_tf.cli",
            "fit",
            "market1501_paper_softmax",
            *(arg for override in overrides for arg in ("--set", override)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = pd.read_csv(tmp_path / "run" / "training_log.csv")
    scalars = tensorboard_scalars(tmp_path / "run" / "tensorboard")
    expected = {
        ("validation", f"epoch_{name[4:]}", 0) if name.startswith("val_") else ("train", f"epoch_{name}", 0): log[
            name
        ].iloc[0]
        for name in log.columns
        if name not in ("epoch", "seconds")
    }  # seconds: the log's own
    assert {"val_mAP", "val_rank1", "loss", "learning_rate"} <= set(log.columns) and len(log) == 1
    assert set(expected) <= set(scalars), sorted(set(expected) - set(scalars))
    for key, value in expected.items():
        assert scalars[key] == pytest.approx(value, rel=1e-6), key


def test_tensorboard_is_a_dependency_pinned_to_the_tensorflow_release():
    import importlib.metadata
    import tomllib

    import tensorflow as tf

    project = tomllib.loads((pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    (pin,) = [d for d in project["dependencies"] if d.split("=")[0].strip() == "tensorboard"]
    version = pin.split("==")[1]
    assert version.split(".")[:2] == tf.__version__.split(".")[:2]
    assert importlib.metadata.version("tensorboard") == version  # what `make test` installed
