"""Atomic file output: reports, checkpoints and exports appear whole or not at all."""

from __future__ import annotations

import contextlib
import os
import pathlib
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Yields a temporary path beside `path` (same suffix); on success it is moved onto `path` with `os.replace`.

    A crash or an exception leaves `path` as it was (the previous version, or nothing) and no temporary file.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_model_atomically(model: "keras.Model", output: str | os.PathLike) -> pathlib.Path:
    """`model.save(output)` for a `.keras` file, through `atomic_output`."""
    output = pathlib.Path(output)
    if output.suffix != ".keras":
        raise ValueError(f"Output must be a .keras file; got {output}")
    with atomic_output(output) as tmp:
        model.save(tmp)
    return output
