import math

import keras
import pandas as pd

from conftest import TINY_MODEL
from hacnn_tf.evaluation.callback import ReIDEvaluation
from hacnn_tf.model import HACNN


def test_skipped_epochs_log_nan_so_the_csv_log_keeps_the_metrics(tiny_synthetic, tmp_path):
    callback = ReIDEvaluation(tiny_synthetic.query, tiny_synthetic.gallery, every=2, epochs=3, ranks=(1, 5))
    csv = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    model = HACNN(None, **TINY_MODEL)
    for cb in (callback, csv):
        cb.set_model(model)
    csv.on_train_begin()
    logged = []
    for epoch in range(3):
        logs = {"loss": 1.0}
        callback.on_epoch_end(epoch, logs)
        csv.on_epoch_end(epoch, logs)
        logged.append(logs)
    csv.on_train_end()
    assert set(logged[0]) == {"loss", "val_mAP", "val_rank1", "val_rank5"}
    assert all(math.isnan(logged[0][k]) for k in ("val_mAP", "val_rank1", "val_rank5"))
    # Epoch 2 (every=2) and epoch 3 (the last) are evaluated, and the CSV log, whose columns were fixed by epoch 1,
    # holds their values.
    table = pd.read_csv(tmp_path / "log.csv")
    assert table["val_mAP"].isna().tolist() == [True, False, False]
    assert table["val_mAP"].iloc[1] == logged[1]["val_mAP"] and 0.0 < logged[1]["val_mAP"] <= 1.0
    assert callback.last_results["rank5"] == logged[2]["val_rank5"]
