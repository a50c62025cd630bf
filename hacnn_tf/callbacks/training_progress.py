"""`TrainingProgress`: training progress on the terminal, in place of Keras' own (`fit(..., verbose=0)`)."""

from __future__ import annotations

import math
import sys
from typing import TextIO

import keras

from hacnn_tf.progress import Progress, format_seconds

__all__ = ["TrainingProgress", "epoch_summary"]

# Validation metrics in the order the summary shows them.
_SHOWN_METRICS = ("val_rank1", "val_rank5", "val_mAP")


def epoch_summary(epoch: int, epochs: int, logs: dict, seconds: float) -> str:
    """`epoch 2/60: loss 2.8468 (global_logits 3.1431, local_logits 2.5505), rank1 0.412, mAP 0.215, learning
    rate 3e-04, 1 min 40 s` for the 1-based `epoch` of `epochs`; metrics are fractions, as in the training log."""
    parts = [f"epoch {epoch}/{epochs}:"]
    if "loss" in logs:
        components = [
            f"{name.removesuffix('_loss')} {float(value):.4f}"
            for name, value in sorted(logs.items())
            if name.endswith("_loss") and not name.startswith("val_")
        ]
        parts.append(f"loss {float(logs['loss']):.4f}" + (f" ({', '.join(components)})" if components else "") + ",")
    for name in _SHOWN_METRICS:
        value = logs.get(name)
        if value is not None and not math.isnan(float(value)):
            parts.append(f"{name.removeprefix('val_')} {float(value):.3f},")
    if "learning_rate" in logs:
        parts.append(f"learning rate {float(logs['learning_rate']):.0e},")
    parts.append(format_seconds(seconds))
    return " ".join(parts)


class TrainingProgress(keras.callbacks.Callback):
    """One progress display (`hacnn_tf.progress.Progress`) over all the steps left to train, with the epoch, the
    loss and the ETA of the whole run, and one summary line per epoch (`epoch_summary`). The display is ended
    before the epoch-end callbacks run, so that their own progress (the re-id evaluation's embedding) gets lines of
    its own. Use it with `model.fit(..., verbose=0)`.

    Args:
        stream: where to write (default `sys.stderr`; the summary lines too).
        enabled: as `Progress`'s (None: on unless `HACNN_TF_PROGRESS=0`).
    """

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None):
        super().__init__()
        self.stream, self.enabled = stream, enabled
        self.progress: Progress | None = None
        self.epochs = self.steps = self.first_epoch = None
        self._epoch_progress_start = 0.0
        self._epoch_label = ""

    def _write(self, line: str) -> None:
        if self.progress is not None and self.progress.enabled:
            stream = self.stream if self.stream is not None else sys.stderr
            print(line, file=stream, flush=True)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epochs, self.steps = self.params.get("epochs"), self.params.get("steps")
        self.first_epoch = None
        self.progress = Progress("training", unit="steps", stream=self.stream, enabled=self.enabled)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch
            if self.steps and self.epochs:
                self.progress.total = (self.epochs - epoch) * self.steps
        self._epoch_progress_start = self.progress.elapsed
        self._epoch_label = f"epoch {epoch + 1}/{self.epochs}"
        self.progress.postfix = self._epoch_label

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        postfix = self._epoch_label + ("" if loss is None else f", loss {float(loss):.4f}")
        self.progress.advance(1, postfix=postfix)
        if self.steps and batch + 1 == self.steps:
            self.progress.close()  # before the epoch-end callbacks (evaluation) print

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.progress.close()
        seconds = self.progress.elapsed - self._epoch_progress_start
        line = epoch_summary(epoch + 1, self.epochs, dict(logs or {}), seconds)
        left = self.progress.total - self.progress.done if self.progress.total else 0
        if left > 0 and self.progress.done:
            line += f"; ETA {format_seconds(self.progress.elapsed / self.progress.done * left)}"
        self._write(line)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.progress.close()
