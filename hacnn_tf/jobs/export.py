"""A model's deployment formats from a data set (the job behind `hacnn-tf export` and the demo's export):
`export_all` calibrated on training images and checked on held-out ones, and the retrieval report of what it wrote."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from hacnn_tf.data.datasets import ReIDDataset
from hacnn_tf.data.pipeline import load_pixels
from hacnn_tf.export.all import FORMATS, export_all
from hacnn_tf.export.parity import parity_report
from hacnn_tf.manifest import manifest_model
from hacnn_tf.model import HACNN


def dataset_pixels(
    dataset: ReIDDataset, input_size: tuple[int, int], calibration_images: int, check_images: int
) -> tuple[np.ndarray, np.ndarray]:
    """`(calibration, check)` pixels `(N, H, W, 3)` (0..255): up to `calibration_images` of the training split and
    up to `check_images` of the held-out query and gallery images, sampled with a fixed seed."""
    held_out = pd.concat([dataset.query, dataset.gallery], ignore_index=True)
    calibration = dataset.train.sample(min(calibration_images, len(dataset.train)), random_state=0)
    return (
        load_pixels(calibration, input_size),
        load_pixels(held_out.sample(min(check_images, len(held_out)), random_state=0), input_size),
    )


def export_formats(
    model: HACNN,
    out_dir: str | os.PathLike,
    formats: Iterable[str] = FORMATS,
    dataset: ReIDDataset | None = None,
    calibration_images: int = 200,
    check_images: int = 64,
    saved_model_options: Mapping[str, Any] | None = None,
    saved_model: str | os.PathLike | None = None,
) -> dict[str, pathlib.Path]:
    """`export_all(model, out_dir, formats, ...)`, calibrated on `calibration_images` training images of `dataset`
    and parity-checked on `check_images` of its query and gallery images (without `dataset`: `export_all`'s random
    check images, and no calibrated format). Returns `{format: folder}`; raises as `export_all` does."""
    calibration = check = None
    if dataset is not None:
        calibration, check = dataset_pixels(dataset, model.input_size, calibration_images, check_images)
    return export_all(model, out_dir, formats, calibration, check, saved_model, saved_model_options)


def retrieval_report(
    model: HACNN,
    folders: Mapping[str, pathlib.Path],
    dataset: ReIDDataset,
    output: str | os.PathLike,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """`parity_report` of each exported folder's model (rows named by `folders`' keys) on the whole query and
    gallery split of `dataset`: embedding parity, Rank-1/5/10, mAP, size, batch-1 latency; written to
    `<output>.csv` and `<output>.md`."""
    return parity_report(
        model,
        {name: manifest_model(folder) for name, folder in folders.items()},
        dataset.query,
        dataset.gallery,
        output,
        num_threads=num_threads,
    )
