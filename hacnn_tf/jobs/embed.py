"""Embeddings of image files, folders or a data set split in one `.npz` file (the job behind `hacnn-tf embed`).

The file holds `paths` (str, one per row), `embeddings` (`(N, D)` float32, row `i` the embedding of `paths[i]`) and,
for a data set split, `pids` and `camids` (int64, as `hacnn_tf.data.load_dataset` reads them). It is written
atomically: it appears whole or not at all.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np

from hacnn_tf.data.datasets import IMAGE_SUFFIXES, SPLITS, load_dataset
from hacnn_tf.errors import DataError, InputFileError, UserError
from hacnn_tf.io_utils import atomic_output, check_writable
from hacnn_tf.runtime import load_embedder


def find_images(inputs: Sequence[str | os.PathLike]) -> list[pathlib.Path]:
    """The image files of `inputs`, in order: a file as it is, a folder's files whose suffix is an image format's
    (`IMAGE_SUFFIXES`, any case) in it and its subfolders, sorted, hidden files and folders (`.name`) left out.

    Raises `InputFileError` for a path that does not exist and `DataError` for a folder without images."""
    found = []
    for given in inputs:
        path = pathlib.Path(given)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            images = sorted(
                file
                for file in path.rglob("*")
                if file.suffix.lower() in IMAGE_SUFFIXES
                and file.is_file()
                and not any(part.startswith(".") for part in file.relative_to(path).parts)
            )
            if not images:
                raise DataError(
                    f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder or "
                    "its subfolders; give a folder that holds images, or the image files themselves"
                )
            found.extend(images)
        else:
            raise InputFileError(f"{path}: no such image file or folder")
    return found


def embed_to_file(
    model: str | os.PathLike,
    output: str | os.PathLike,
    inputs: Sequence[str | os.PathLike] = (),
    dataset: str | None = None,
    root: str | os.PathLike | None = None,
    split: str | None = None,
    normalize: bool = False,
    batch_size: int = 64,
    progress: bool | None = None,
    **dataset_options,
) -> dict:
    """Embeds the images of `inputs` (files and folders, `find_images`) or of the `split` of `dataset` under `root`
    with `model` (any path `load_embedder` reads: a checkpoint, a SavedModel version folder, an export format
    folder) and writes `output` (`.npz`, this module's docstring). With `normalize`, each row is scaled to unit norm
    (the model's own rows have norm sqrt(2): two L2-normalised branches side by side).

    The inputs and the output folder are checked before the model is loaded; nothing is written unless every image
    is embedded. Returns `{"images", "dim", "skipped"}` (`skipped`: files of the data set that `load_dataset`
    left out as unreadable)."""
    output = pathlib.Path(output)
    if output.suffix != ".npz":
        raise UserError(f"--output {output}: must end with .npz (numpy's archive of the arrays)")
    if output.is_dir():
        raise InputFileError(f"--output {output}: a folder; give a file name such as {output / 'embeddings.npz'}")
    if dataset is None and (root is not None or split is not None):
        raise UserError("--root and --split go with --dataset NAME")
    if dataset is not None:
        if inputs:
            raise UserError("give image files and folders, or --dataset with --root and --split, not both")
        if root is None or split not in SPLITS:
            raise UserError(
                f"--dataset {dataset} needs --root (the folder holding the data set) and --split (one of "
                f"{', '.join(SPLITS)})"
            )
        data = load_dataset(dataset, root, **dataset_options)
        table = getattr(data, split)
        if table.empty:
            raise DataError(f"{data.name} under {root}: the {split} split holds no images")
        paths, skipped = table["path"].astype(str).tolist(), len(data.skipped)
        extra = {"pids": table["pid"].to_numpy(np.int64), "camids": table["camid"].to_numpy(np.int64)}
    else:
        if not inputs:
            raise UserError("give image files or folders (INPUT...), or --dataset NAME --root DIR --split SPLIT")
        paths, skipped, extra = [str(path) for path in find_images(inputs)], 0, {}
    check_writable(output)
    embedder = load_embedder(model)
    embeddings = embedder.embed_files(paths, batch_size=batch_size, progress=progress)
    if normalize:
        embeddings = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    with atomic_output(output) as tmp:
        np.savez(tmp, paths=np.asarray(paths, dtype=str), embeddings=embeddings.astype(np.float32), **extra)
    return {"images": len(paths), "dim": int(embeddings.shape[1]), "skipped": skipped}
