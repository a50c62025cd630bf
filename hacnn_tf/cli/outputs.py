"""The closing lines of a `hacnn-tf` command: what it wrote where, and how long it took."""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Sequence

from hacnn_tf.progress import format_seconds


def written_lines(
    outputs: Sequence[tuple[str, str | os.PathLike, str]], started: float, verb: str = "finished"
) -> list[str]:
    """`finished in 3 min 05 s; written:` and one aligned line `  WHAT  PATH  NOTE` per `(what, path, note)` whose
    path exists (an empty note is left out). `started` is a `time.perf_counter()` value."""
    shown = [(what, pathlib.Path(path), note) for what, path, note in outputs if pathlib.Path(path).exists()]
    lines = [f"{verb} in {format_seconds(time.perf_counter() - started)}" + ("; written:" if shown else "")]
    width = max((len(what) for what, _, _ in shown), default=0)
    for what, path, note in shown:
        suffix = "/" if path.is_dir() else ""
        lines.append(f"  {what:<{width}}  {path}{suffix}" + (f"  ({note})" if note else ""))
    return lines


def print_written(
    outputs: Sequence[tuple[str, str | os.PathLike, str]], started: float, verb: str = "finished"
) -> None:
    """Prints `written_lines` to stdout."""
    print("\n".join(written_lines(outputs, started, verb)), flush=True)
