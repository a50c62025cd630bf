"""Progress of a long counted step (embedding images, training steps) on the terminal.

On a terminal (stderr is a TTY) a bar with the count, the elapsed time and the ETA is redrawn in place; elsewhere (a
log file, CI, a pipe) a plain line `LABEL: 1,280/2,104 images (61%), 12 s, ETA 8 s` is printed every `interval`
seconds (30 by default), so that a short step prints nothing and a long one shows it is alive. Both go to stderr:
stdout keeps the results. `HACNN_TF_PROGRESS=0` turns all progress output off (`=1` forces the bar even without a
TTY).
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import TextIO

__all__ = ["PROGRESS_ENV", "Progress", "format_seconds"]

PROGRESS_ENV = "HACNN_TF_PROGRESS"
BAR_WIDTH = 24
REDRAW_SECONDS = 0.2  # the bar's redraw rate limit
PLAIN_INTERVAL_SECONDS = 30.0


def format_seconds(seconds: float) -> str:
    """`42 s`, `3 min 05 s`, `1 h 02 min`."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Progress of `total` units of work (`None`: unknown), shown as the module docstring says.

    Args:
        label: what is being done, e.g. "embedding 2,104 images".
        total: the number of units, or None (then no percentage and no ETA).
        unit: the name of a unit in the counts ("images", "steps").
        stream: where to write (default `sys.stderr`).
        interval: seconds between plain lines when `stream` is not a TTY.
        enabled: False shows nothing; None follows `HACNN_TF_PROGRESS` (default on).

    Example:
        with Progress("embedding", total=len(paths), unit="images") as progress:
            for batch in batches:
                ...
                progress.advance(len(batch))
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        unit: str = "",
        stream: TextIO | None = None,
        interval: float = PLAIN_INTERVAL_SECONDS,
        enabled: bool | None = None,
    ):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        setting = os.environ.get(PROGRESS_ENV, "")
        self.enabled = setting != "0" if enabled is None else bool(enabled)
        try:
            tty = self.stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        self.dynamic = self.enabled and (tty or setting == "1")
        self.interval = float(interval)
        self.done = 0
        self.postfix = ""
        self.started = time.perf_counter()
        self._last_shown = self.started
        self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind, error, trace) -> None:
        self.close(finished=kind is None)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def advance(self, count: int = 1, postfix: str | None = None) -> None:
        """Counts `count` more units done; `postfix` (e.g. `loss 1.234`) is shown after the counts."""
        self.done += int(count)
        if postfix is not None:
            self.postfix = postfix
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.dynamic:
            if now - self._last_shown >= REDRAW_SECONDS or self.done == self.total:
                self._write("\r" + self.line(bar=True) + "\x1b[K")
                self._last_shown, self._drawn = now, True
        elif now - self._last_shown >= self.interval:
            self._write(self.line() + "\n")
            self._last_shown, self._drawn = now, True

    def line(self, bar: bool = False) -> str:
        """The progress as one line of text (with a bar drawn in characters when `bar`)."""
        elapsed = self.elapsed
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            fraction = min(1.0, self.done / self.total)
            counts = f"{self.done:,}/{self.total:,}{unit} ({fraction:.0%})"
            eta = f", ETA {format_seconds(elapsed / fraction - elapsed)}" if 0 < fraction < 1 else ""
        else:
            fraction, counts, eta = None, f"{self.done:,}{unit}", ""
        postfix = f", {self.postfix}" if self.postfix else ""
        if bar and fraction is not None:
            filled = math.floor(fraction * BAR_WIDTH)
            return (
                f"{self.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {counts}, {format_seconds(elapsed)}"
                f"{eta}{postfix}"
            )
        return f"{self.label}: {counts}, {format_seconds(elapsed)}{eta}{postfix}"

    def close(self, finished: bool = True) -> None:
        """Ends the display: the bar's last state stays on its line; a plain display that printed anything ends
        with a last line (`done` when `finished`)."""
        if not self.enabled or not self._drawn:
            return
        if self.dynamic:
            self._write("\r" + self.line(bar=True) + "\x1b[K\n")
        else:
            self._write(self.line() + (" (done)" if finished else " (stopped)") + "\n")
        self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: progress is not worth an error
            self.enabled = False
