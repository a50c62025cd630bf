"""CMC and training-curve figures, the CMC CSV files and the training-log checks."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hacnn_tf.visualization.curves import (
    CMC_FIGSIZE,
    TRAINING_CURVES_FIGSIZE,
    plot_cmc,
    plot_training_curves,
    read_cmc_csv,
    read_training_log,
    write_cmc_csv,
)


def _png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_plot_cmc_writes_a_png_of_the_documented_size(tmp_path):
    cmc = np.linspace(0.3, 1.0, 50)
    path = plot_cmc({"linear": cmc, "perfect": np.ones(50)}, tmp_path / "cmc.png", max_rank=10)
    assert _png_size(path) == (round(CMC_FIGSIZE[0] * 120), round(CMC_FIGSIZE[1] * 120)) == (720, 540)
    assert _png_size(plot_cmc({"a": cmc}, tmp_path / "small.png", dpi=50)) == (300, 225)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmc.png", "small.png"]  # no temporary files left
    with pytest.raises(ValueError, match="at least one curve"):
        plot_cmc({}, tmp_path / "empty.png")
    with pytest.raises(ValueError, match="1-D"):
        plot_cmc({"bad": np.ones((2, 2))}, tmp_path / "bad.png")


def test_cmc_csv_round_trip_with_curves_of_different_lengths(tmp_path):
    curves = {"model": np.array([0.5, 0.75, 1.0]), "model + re-ranking": np.array([0.6, 1.0])}
    path = write_cmc_csv(curves, tmp_path / "eval_cmc.csv")
    table = pd.read_csv(path)
    assert list(table.columns) == ["rank", "model", "model + re-ranking"]
    assert table["rank"].tolist() == [1, 2, 3]
    read = read_cmc_csv(path)
    assert list(read) == list(curves)
    for name, curve in curves.items():
        np.testing.assert_array_equal(read[name], curve)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="bad.csv.*'rank'"):
        read_cmc_csv(tmp_path / "bad.csv")


def _log(path, **columns):
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_training_curves_png_size_and_nan_epochs(tmp_path):
    # As Keras' CSVLogger writes it: `NA` where an epoch has no value, empty val_* columns it invents.
    (tmp_path / "training_log.csv").write_text(
        "epoch,global_logits_loss,learning_rate,local_logits_loss,loss,val_loss,val_mAP,val_rank1\n"
        "0,3.1,0.001,3.3,6.4,NA,NA,NA\n"
        "1,2.5,0.001,2.6,5.1,NA,0.25,0.4\n"
        "2,2.0,0.0001,2.1,4.1,NA,NA,NA\n"
        "3,1.8,0.0001,1.9,3.7,NA,0.35,0.5\n"
    )
    log = read_training_log(tmp_path / "training_log.csv")
    assert log["val_mAP"].notna().tolist() == [False, True, False, True]
    path = plot_training_curves(tmp_path / "training_log.csv", tmp_path / "curves.png")
    assert _png_size(path) == (round(TRAINING_CURVES_FIGSIZE[0] * 100), round(TRAINING_CURVES_FIGSIZE[1] * 100))
    assert _png_size(path) == (1500, 400)
    # Only epoch and loss are required.
    minimal = _log(tmp_path / "minimal.csv", epoch=[0, 1], loss=[2.0, 1.0])
    assert _png_size(plot_training_curves(minimal, tmp_path / "minimal.png", dpi=50)) == (750, 200)


def test_resumed_logs_keep_the_last_row_of_each_epoch(tmp_path):
    # A Keras CSVLogger log (epochs from 0) is renumbered from 1, as the console and the figures count.
    log = read_training_log(_log(tmp_path / "log.csv", epoch=[0, 1, 2, 1, 2, 3], loss=[4, 3, 9, 2.5, 2, 1.5]))
    assert log["epoch"].tolist() == [1, 2, 3, 4] and log["loss"].tolist() == [4, 2.5, 2, 1.5]
    # A TrainingLog log (epochs from 1) keeps its numbers.
    log = read_training_log(_log(tmp_path / "ours.csv", epoch=[1, 2, 3, 2, 3, 4], loss=[4, 3, 9, 2.5, 2, 1.5]))
    assert log["epoch"].tolist() == [1, 2, 3, 4] and log["loss"].tolist() == [4, 2.5, 2, 1.5]


@pytest.mark.parametrize("missing", ["epoch", "loss"])
def test_training_log_without_a_required_column_names_file_and_column(tmp_path, missing):
    columns = {"epoch": [0, 1], "loss": [2.0, 1.0], "val_mAP": [0.1, 0.2]}
    del columns[missing]
    path = _log(tmp_path / "broken_log.csv", **columns)
    with pytest.raises(ValueError, match=rf"broken_log\.csv.*'{missing}'"):
        plot_training_curves(path, tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()


def test_empty_training_logs_are_errors(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv.*empty"):
        read_training_log(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("epoch,loss\n")
    with pytest.raises(ValueError, match="header.csv.*no rows"):
        read_training_log(tmp_path / "header.csv")
