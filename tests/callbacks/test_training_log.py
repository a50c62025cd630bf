"""`TrainingLog` (the run's training_log.csv) and `TrainingProgress` (the terminal during `fit`)."""

import io

import numpy as np
import pandas as pd

from hacnn_tf.callbacks import TrainingLog, TrainingProgress
from hacnn_tf.callbacks.training_progress import epoch_summary
from hacnn_tf.training_log import format_log_value, log_columns, read_training_log
from hacnn_tf.visualization.curves import plot_training_curves

# An epoch log as Keras hands it to callbacks: keys in alphabetical order, float32 values as Python floats.
LOGS = [
    {
        "global_logits_loss": 3.143099784851074,
        "learning_rate": 0.0010000000474974513,
        "local_logits_loss": 2.55049,
        "loss": 2.846799850463867,
        "val_mAP": float("nan"),
        "val_mINP": float("nan"),
        "val_rank1": float("nan"),
        "val_rank10": float("nan"),
        "val_rank5": float("nan"),
    },
    {
        "global_logits_loss": 1.4858,
        "learning_rate": 0.0001,
        "local_logits_loss": 1.0967,
        "loss": 1.2912,
        "val_mAP": 0.8762999773025513,
        "val_mINP": 0.6898,
        "val_rank1": 0.9424999952316284,
        "val_rank10": 0.9975,
        "val_rank5": 0.9925,
    },
]
COLUMNS = [
    "epoch",
    "loss",
    "global_logits_loss",
    "local_logits_loss",
    "val_rank1",
    "val_rank5",
    "val_rank10",
    "val_mAP",
    "val_mINP",
    "learning_rate",
    "seconds",
]


def train(log: TrainingLog, epochs, first=0):
    log.on_train_begin()
    for epoch in range(first, first + epochs):
        log.on_epoch_begin(epoch)
        log.on_epoch_end(epoch, dict(LOGS[epoch % 2]))
    log.on_train_end()


def test_columns_in_a_natural_order_epochs_from_one_rounded_values(tmp_path):
    path = tmp_path / "training_log.csv"
    train(TrainingLog(path), 2)
    lines = path.read_text().splitlines()
    assert lines[0].split(",") == COLUMNS
    first = lines[1].split(",")
    assert first[:4] == ["1", "2.8468", "3.1431", "2.55049"] and first[4:9] == [""] * 5 and first[9] == "0.001"
    second = dict(zip(COLUMNS, lines[2].split(",")))
    assert (second["epoch"], second["val_rank1"], second["val_mAP"]) == ("2", "0.9425", "0.8763")
    assert float(second["seconds"]) >= 0
    # The readers: the figures and the history of a finished run.
    log = read_training_log(path)
    assert log["epoch"].tolist() == [1, 2] and list(log.columns) == COLUMNS
    np.testing.assert_allclose(log["val_mAP"], [np.nan, 0.8763])
    assert plot_training_curves(path, tmp_path / "curves.png").is_file()


def test_a_resumed_run_appends_under_the_header_and_a_new_run_starts_over(tmp_path):
    path = tmp_path / "training_log.csv"
    train(TrainingLog(path), 1)
    train(TrainingLog(path, append=True), 1, first=1)
    assert pd.read_csv(path)["epoch"].tolist() == [1, 2]
    # Under an older header (Keras' CSVLogger: sorted, 0-based) a resumed run keeps its columns and numbering.
    path.write_text("epoch,learning_rate,loss\n0,0.001,2.0\n")
    train(TrainingLog(path, append=True), 1, first=1)
    assert path.read_text().splitlines() == ["epoch,learning_rate,loss", "0,0.001,2.0", "1,0.0001,1.2912"]
    assert read_training_log(path)["epoch"].tolist() == [1, 2]
    train(TrainingLog(path), 1)
    assert len(path.read_text().splitlines()) == 2


def test_format_and_order_helpers():
    assert [format_log_value(v) for v in (3, 0.10000000149011612, 1.23456789e-5, float("nan"), None, 2.0)] == [
        "3",
        "0.1",
        "1.234568e-05",
        "",
        "",
        "2",
    ]
    assert log_columns(["val_rank20", "zeta", "val_mAP", "loss", "epoch", "val_rank1", "seconds", "b_loss"]) == [
        "epoch",
        "loss",
        "b_loss",
        "val_rank1",
        "val_rank20",
        "val_mAP",
        "zeta",
        "seconds",
    ]


class Steps:
    """A clock for the progress display: each read is one second later."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def test_training_progress_prints_a_line_per_epoch_with_the_eta(monkeypatch):
    from hacnn_tf import progress

    monkeypatch.setattr(progress.time, "perf_counter", Steps())
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    stream = io.StringIO()
    callback = TrainingProgress(stream=stream)
    callback.set_params({"epochs": 3, "steps": 2})
    callback.on_train_begin()
    for epoch in (1, 2):  # resumed after epoch 1: 2 epochs of 2 steps left
        callback.on_epoch_begin(epoch)
        for step in range(2):
            callback.on_train_batch_end(step, {"loss": 2.0 - epoch / 2})
        callback.on_epoch_end(epoch, dict(LOGS[epoch - 1]))
    callback.on_train_end()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and callback.progress.total == 4
    assert (
        lines[0].startswith("epoch 2/3: loss 2.8468 (global_logits 3.1431, local_logits 2.5505), learning rate 1e-03, ")
        and lines[0].endswith(" s; ETA 8 s")
        or "ETA" in lines[0]
    ), lines
    assert (
        lines[1].startswith(
            "epoch 3/3: loss 1.2912 (global_logits 1.4858, local_logits 1.0967), rank1 0.942, "
            "rank5 0.993, mAP 0.876, learning rate 1e-04, "
        )
        and "ETA" not in lines[1]
    ), lines


def test_epoch_summary_leaves_out_what_was_not_measured():
    assert epoch_summary(1, 2, {"loss": 1.5}, 75) == "epoch 1/2: loss 1.5000, 1 min 15 s"
