"""A `model.fit` callback that measures re-identification accuracy during training."""

from __future__ import annotations

import math
from typing import Sequence

import keras
import pandas as pd

from hacnn_tf.evaluation.features import evaluate_model


class ReIDEvaluation(keras.callbacks.Callback):
    """Every `every` epochs (and after the last), evaluates the model on `query` / `gallery` and adds
    `val_mAP`, `val_rank1`, `val_rank5`, ... to the epoch logs, so that the history, the CSV log, TensorBoard and
    `ModelCheckpoint(monitor="val_mAP")` see them. Place it before those callbacks.

    Epochs without an evaluation log NaN for the same names: Keras' `CSVLogger` fixes its columns at the first
    epoch, and would otherwise drop the metrics of every run whose first epoch is not evaluated."""

    def __init__(self, query: pd.DataFrame, gallery: pd.DataFrame, every: int = 10, epochs: int | None = None,
                 metric: str = "euclidean", ranks: Sequence[int] = (1, 5, 10, 20), batch_size: int = 64):
        super().__init__()
        self.query, self.gallery = query, gallery
        self.every, self.epochs = int(every), epochs
        self.metric, self.ranks, self.batch_size = metric, tuple(ranks), batch_size
        self.last_results: dict | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        last = self.epochs is not None and epoch + 1 == self.epochs
        if not last and (self.every <= 0 or (epoch + 1) % self.every):
            if logs is not None:
                logs.update({f"val_{name}": math.nan for name in ("mAP", *(f"rank{k}" for k in self.ranks))})
            return
        results = evaluate_model(self.model, self.query, self.gallery, metric=self.metric, ranks=self.ranks,
                                 batch_size=self.batch_size)
        self.last_results = results
        if logs is not None:
            logs.update({f"val_{name}": float(value) for name, value in results.items() if name != "cmc"})
