import logging
import math

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MODEL

from hacnn_tf.callbacks import ReIDEvaluation
from hacnn_tf.evaluation.features import extract_features
from hacnn_tf.evaluation.metrics import evaluate_from_features
from hacnn_tf.model import HACNN


def test_skipped_epochs_log_nan_so_the_csv_log_keeps_the_metrics(tiny_synthetic, tmp_path, capsys):
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
    assert set(logged[0]) == {"loss", "val_mAP", "val_mINP", "val_rank1", "val_rank5"}
    assert all(math.isnan(logged[0][k]) for k in ("val_mAP", "val_mINP", "val_rank1", "val_rank5"))
    # Epoch 2 (every=2) and epoch 3 (the last) are evaluated, and the CSV log, whose columns were fixed by epoch 1,
    # holds their values.
    table = pd.read_csv(tmp_path / "log.csv")
    assert table["val_mAP"].isna().tolist() == [True, False, False]
    assert table["val_mAP"].iloc[1] == logged[1]["val_mAP"] and 0.0 < logged[1]["val_mAP"] <= 1.0
    assert callback.last_results["rank5"] == logged[2]["val_rank5"]
    # Each evaluation prints its metrics with its time and peak memory.
    printed = [line for line in capsys.readouterr().out.splitlines() if "re-id evaluation" in line]
    assert [line.split(":")[0] for line in printed] == ["Epoch 2", "Epoch 3"]
    assert "mINP" in printed[0] and " s, peak resident memory " in printed[0] and printed[0].endswith("GiB)")


@pytest.mark.slow
def test_reports_the_metrics_of_its_embeddings_with_and_without_query_expansion(tiny_synthetic):
    query, gallery = tiny_synthetic.query, tiny_synthetic.gallery
    model = HACNN(None, **TINY_MODEL)
    callback = ReIDEvaluation(query, gallery, every=1, ranks=(1, 5), aqe=True, verbose=0)
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    query_features, gallery_features = extract_features(model, query), extract_features(model, gallery)
    for prefix, aqe in (("val_", False), ("val_aqe_", True)):
        expected = evaluate_from_features(query_features, gallery_features, query, gallery, ranks=(1, 5), aqe=aqe)
        for name in ("mAP", "mINP", "rank1", "rank5"):
            assert logs[prefix + name] == pytest.approx(expected[name], abs=1e-6)


def test_non_finite_embeddings_log_nan_with_a_warning(tiny_synthetic, caplog):
    """A diverged model (here: NaN weights) embeds to NaN; the evaluation refuses the features, the callback logs
    NaN rather than a Rank-1 of 0 and leaves the stopping to TerminateOnNaN."""
    model = HACNN(None, **TINY_MODEL)
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    callback = ReIDEvaluation(tiny_synthetic.query, tiny_synthetic.gallery, every=1, ranks=(1,))
    callback.set_model(model)
    logs = {}
    with caplog.at_level(logging.WARNING):
        callback.on_epoch_end(0, logs)
    assert all(math.isnan(logs[name]) for name in ("val_mAP", "val_mINP", "val_rank1"))
    assert "query features hold non-finite values (NaN or inf) in " in caplog.text
