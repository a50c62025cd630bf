"""A `model.fit` callback that measures re-identification accuracy during training."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import keras
import pandas as pd

from hacnn_tf.evaluation.distance import NonFiniteFeaturesError
from hacnn_tf.evaluation.features import embed_query_gallery
from hacnn_tf.evaluation.metrics import evaluate_from_features
from hacnn_tf.evaluation.resources import describe, measure

logger = logging.getLogger(__name__)


class ReIDEvaluation(keras.callbacks.Callback):
    """Every `every` epochs (and after the last), evaluates the model on `query` / `gallery` from its embeddings
    (block by block: memory linear in the number of images) and adds `val_mAP`, `val_mINP`, `val_rank1`,
    `val_rank5`, ... to the epoch logs, so that the history, the CSV log, TensorBoard and
    `ModelCheckpoint(monitor="val_mAP")` see them. Place it before those callbacks. With `aqe`, the same metrics
    after average query expansion are added as `val_aqe_mAP`, ...; with `verbose`, a line with the metrics, the time
    and the peak memory of the evaluation is printed.

    Epochs without an evaluation log NaN for the same names: Keras' `CSVLogger` fixes its columns at the first
    epoch, and would otherwise drop the metrics of every run whose first epoch is not evaluated. So does an epoch
    whose embeddings are not finite (a diverged model): the evaluation refuses them, with a warning."""

    def __init__(
        self,
        query: pd.DataFrame,
        gallery: pd.DataFrame,
        every: int = 10,
        epochs: int | None = None,
        metric: str = "euclidean",
        ranks: Sequence[int] = (1, 5, 10, 20),
        batch_size: int = 64,
        aqe: bool = False,
        verbose: int = 1,
    ):
        super().__init__()
        self.query, self.gallery = query, gallery
        self.every, self.epochs = int(every), epochs
        self.metric, self.ranks, self.batch_size = metric, tuple(ranks), batch_size
        self.aqe, self.verbose = aqe, verbose
        self.last_results: dict | None = None

    def _names(self) -> list[str]:
        names = ["mAP", "mINP", *(f"rank{k}" for k in self.ranks)]
        return [f"val_{name}" for name in names] + ([f"val_aqe_{name}" for name in names] if self.aqe else [])

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        last = self.epochs is not None and epoch + 1 == self.epochs
        if logs is not None:
            logs.update(dict.fromkeys(self._names(), math.nan))
        if not last and (self.every <= 0 or (epoch + 1) % self.every):
            return
        with measure() as usage:
            try:
                results = self._evaluate()
            except NonFiniteFeaturesError as error:
                logger.warning("epoch %d: re-id evaluation skipped: %s", epoch + 1, error)
                return
        self.last_results = results
        scalars = {f"val_{name}": float(value) for name, value in results.items() if not name.endswith("cmc")}
        if logs is not None:
            logs.update(scalars)
        if self.verbose:
            shown = ", ".join(f"{name.removeprefix('val_')} {value:.4f}" for name, value in scalars.items())
            print(f"Epoch {epoch + 1}: re-id evaluation: {shown} ({describe(usage)})", flush=True)

    def _evaluate(self) -> dict:
        """`{"mAP", "mINP", "rank1", ..., "cmc"}` of the embeddings, and with `aqe` the same after query expansion
        under `aqe_` names."""
        features = embed_query_gallery(self.model, self.query, self.gallery, self.batch_size)
        results = {}
        for prefix, aqe in (("", False), ("aqe_", True))[: 1 + self.aqe]:
            metrics = evaluate_from_features(
                *features, self.query, self.gallery, ranks=self.ranks, metric=self.metric, aqe=aqe
            )
            results.update({prefix + name: value for name, value in metrics.items()})
        return results
