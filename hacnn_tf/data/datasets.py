"""Person re-identification data set readers: Market-1501, DukeMTMC-reID, MSMT17, CUHK03 and user folders / CSVs.

Readers only list image files (no decoding) and return pandas tables; they follow torchreid 0.2.5's semantics
(`torchreid/reid/data/datasets/image/*.py`): camera ids are 0-based, training ids are relabelled to `0..N-1` in
sorted order of the original ids (kept in `orig_pid`), query and gallery keep their original ids, junk images
(id -1) are dropped and distractors (id 0) stay in the gallery. Importing this module does not import TensorFlow;
verifying images (`verify_images`, `load_dataset(verify=True)`) decodes them with it.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import pathlib
import re
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from PIL import Image

__all__ = ["ReIDDataset", "load_dataset", "verify_images", "DATASET_NAMES", "IMAGE_SUFFIXES"]

logger = logging.getLogger(__name__)

SPLITS = ("train", "query", "gallery")
_COLUMNS = ["path", "pid", "camid", "split"]
_SKIPPED_COLUMNS = ["path", "reason"]
_PID_CAM_PATTERN = re.compile(r"([-\d]+)_c(\d)")  # torchreid's Market-1501 / DukeMTMC-reID pattern
_FOLDER_PATTERN = re.compile(r"^(-?\d+)_c(\d+)")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}  # what `image_decoding.decode_rgb` reads


@dataclasses.dataclass(frozen=True, eq=False)
class ReIDDataset:
    """A loaded data set: one table per split with columns `path` (absolute), `pid`, `camid` (0-based), `split`,
    `orig_pid` (the id before relabelling; equal to `pid` in query and gallery), plus the images that were skipped
    (`path`, `reason`)."""

    name: str
    train: pd.DataFrame
    query: pd.DataFrame
    gallery: pd.DataFrame
    skipped: pd.DataFrame = dataclasses.field(default_factory=lambda: pd.DataFrame(columns=_SKIPPED_COLUMNS))

    @property
    def num_train_pids(self) -> int:
        """Number of training identities (the classifier's width); a `ValueError` when there are no training
        images."""
        if self.train.empty:
            skipped = f"; {len(self.skipped)} file(s) skipped, see ReIDDataset.skipped" if len(self.skipped) else ""
            raise _errors().DataError(f"{self.name}: no training images (the train split is empty{skipped})")
        return int(self.train["pid"].nunique())

    @property
    def num_train_cams(self) -> int:
        """Number of cameras in the training split."""
        return int(self.train["camid"].nunique())

    def summary(self) -> pd.DataFrame:
        """Statistics table: rows train/query/gallery, columns ids, images, cameras."""
        rows = {
            split: {"ids": int(df["pid"].nunique()), "images": len(df), "cameras": int(df["camid"].nunique())}
            for split, df in zip(SPLITS, (self.train, self.query, self.gallery))
        }
        return pd.DataFrame.from_dict(rows, orient="index", columns=["ids", "images", "cameras"])

    def print_summary(self) -> None:
        """Prints the statistics table as torchreid does."""
        table = self.summary()
        line = "  " + "-" * 40
        print(f"=> Loaded {self.name}")
        print(line)
        print("  subset   | # ids | # images | # cameras")
        print(line)
        for split, row in table.iterrows():
            print(f"  {split:<8} | {row['ids']:5d} | {row['images']:8d} | {row['cameras']:9d}")
        print(line)
        if len(self.skipped):
            print(f"  skipped {len(self.skipped)} file(s)")


# --------------------------------------------------------------------------------------------------------------
# Shared helpers


def _errors():
    """`hacnn_tf.errors`, imported when an error is raised: importing anything of the package imports TensorFlow
    (its `__init__`), which listing files does not need."""
    from hacnn_tf import errors

    return errors


def _frame(rows: Sequence[tuple[str, int, int]], split: str) -> pd.DataFrame:
    from hacnn_tf.data.identities import integer_ids  # here: importing hacnn_tf's package imports TensorFlow

    df = pd.DataFrame(list(rows), columns=["path", "pid", "camid"])
    df["split"] = split
    for column in ("pid", "camid"):
        df[column] = integer_ids(df[column].to_numpy(), f"{split} {column}", df["path"].tolist(), np.int64)
    return df.astype({"path": str, "split": str})[_COLUMNS]


def _skipped_frame(rows: Sequence[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=_SKIPPED_COLUMNS).astype(str)


def _find_layout(
    label: str, root: pathlib.Path, candidates: Sequence[pathlib.Path], required: Sequence[str]
) -> pathlib.Path:
    """Returns the first candidate folder holding every `required` entry, or raises naming what is missing."""
    if not root.exists():
        raise _errors().InputFileError(
            f"{label}: data set root {root} does not exist: give the folder that holds the data set (--root, data.root)"
        )
    candidates = list(dict.fromkeys(candidates))
    for folder in candidates:
        if all((folder / entry).exists() for entry in required):
            return folder
    best = max(candidates, key=lambda folder: sum((folder / entry).exists() for entry in required))
    missing = [entry for entry in required if not (best / entry).exists()]
    what = ", ".join(f"'{entry}'" for entry in missing)
    noun = "entries" if len(missing) > 1 else ("file" if pathlib.PurePath(missing[0]).suffix else "folder")
    looked = ", ".join(str(folder) for folder in candidates)
    layout = ", ".join(f"{entry}{'' if pathlib.PurePath(entry).suffix else '/'}" for entry in required)
    raise _errors().InputFileError(
        f"{label}: expected {noun} {what} under {root} (looked in {looked}): give the "
        f"folder that holds {layout} (or its parent) as the data set root"
    )


def _parse_named_dir(
    folder: pathlib.Path, split: str, pattern: re.Pattern
) -> tuple[list[tuple[str, int, int]], list[tuple[str, str]]]:
    """Lists `folder`'s images named `<pid>_c<cam>...`; returns (path, pid, camid as in the name) rows and the
    files left out: not images (by suffix) or named otherwise. Junk images (pid -1) are dropped."""
    rows, skipped = [], []
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((str(path), f"{split}: not an image file (suffix not one of {sorted(IMAGE_SUFFIXES)})"))
            continue
        match = pattern.search(path.name)
        if match is None:
            skipped.append((str(path), f"{split}: file name does not match <pid>_c<camera>"))
            continue
        pid, cam = int(match.group(1)), int(match.group(2))
        if pid != -1:
            rows.append((str(path), pid, cam))
    return rows, skipped


def verify_images(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decodes each `df.path` with the decoder training, evaluation and serving use (`image_decoding.decode_rgb`; this
    imports TensorFlow), in parallel.

    Returns `(ok, skipped)`: the decodable rows (index reset) and a (path, reason) table of the others.
    """
    from hacnn_tf.data.pipeline import undecodable_images

    paths = df["path"].astype(str).tolist()
    reasons = undecodable_images(paths)
    ok = np.ones(len(paths), dtype=bool)
    ok[list(reasons)] = False
    skipped = [(paths[index], f"unreadable image: {reason}") for index, reason in sorted(reasons.items())]
    return df[ok].reset_index(drop=True), _skipped_frame(skipped)


def _finalise(name: str, splits: dict[str, pd.DataFrame], skipped: list[pd.DataFrame], verify: bool) -> ReIDDataset:
    """Verifies images, relabels training ids to 0..N-1 (sorted original ids) and logs skipped images."""
    if verify:  # one pass over all splits: a pass has a fixed cost (tracing the decoder) of about half a second
        ok, bad = verify_images(pd.concat([splits[split] for split in SPLITS], ignore_index=True))
        splits = {split: ok[ok["split"] == split] for split in SPLITS}
        skipped.append(bad)
    for split in SPLITS:
        df = splits[split].reset_index(drop=True)
        df["orig_pid"] = df["pid"]
        if split == "train":
            labels = {pid: label for label, pid in enumerate(sorted(df["pid"].unique()))}
            df["pid"] = df["pid"].map(labels).astype("int64")
        splits[split] = df
    all_skipped = pd.concat([s for s in skipped if len(s)] or [_skipped_frame([])], ignore_index=True)
    if len(all_skipped):
        first = ", ".join(all_skipped["path"].head(5))
        logger.warning("%s: skipped %d file(s) (see ReIDDataset.skipped), first: %s", name, len(all_skipped), first)
    return ReIDDataset(name, splits["train"], splits["query"], splits["gallery"], all_skipped)


# --------------------------------------------------------------------------------------------------------------
# Market-1501 and DukeMTMC-reID


def _load_bounding_box_layout(
    label: str, root: pathlib.Path, subdirs: Sequence[str]
) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]:
    candidates = [root] + [root / sub for sub in subdirs]
    folder_names = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    base = _find_layout(label, root, candidates, list(folder_names.values()))
    splits, skipped = {}, []
    for split, folder in folder_names.items():
        rows, bad = _parse_named_dir(base / folder, split, _PID_CAM_PATTERN)
        splits[split] = _frame([(path, pid, cam - 1) for path, pid, cam in rows], split)
        skipped.append(_skipped_frame(bad))
    return splits, skipped


def _load_market1501(root: pathlib.Path) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]:
    subdirs = ["Market-1501-v15.09.15", "market1501", "market1501/Market-1501-v15.09.15"]
    return _load_bounding_box_layout("Market-1501", root, subdirs)


def _load_dukemtmcreid(root: pathlib.Path) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]:
    subdirs = ["DukeMTMC-reID", "dukemtmc-reid/DukeMTMC-reID"]
    return _load_bounding_box_layout("DukeMTMC-reID", root, subdirs)


# --------------------------------------------------------------------------------------------------------------
# MSMT17

_MSMT17_DIRS = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}
_MSMT17_LISTS = ["list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt"]


def _read_msmt17_list(list_path: pathlib.Path, image_dir: pathlib.Path, split: str) -> pd.DataFrame:
    rows = []
    for number, line in enumerate(list_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            relpath, pid = line.split()
            camid = int(pathlib.PurePosixPath(relpath).name.split("_")[2]) - 1
            rows.append((str(image_dir / relpath), int(pid), camid))
        except (ValueError, IndexError):
            raise _errors().DataError(
                f"MSMT17: {list_path} line {number}: {line.strip()!r} is not "
                f"'<folder>/<pid>_<n>_<camera>_....jpg <pid>' as in MSMT17's own lists"
            ) from None
    return _frame(rows, split)


def _load_msmt17(
    root: pathlib.Path, msmt17_use_val: bool = False
) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]:
    # `root` may be the version folder itself, its parent, or the parent of `msmt17/`
    candidates = [parent / version for parent in (root, root / "msmt17") for version in _MSMT17_DIRS] + [root]
    base = _find_layout("MSMT17", root, candidates, _MSMT17_LISTS)
    version = next((v for v, (tr, te) in _MSMT17_DIRS.items() if (base / tr).is_dir() and (base / te).is_dir()), None)
    if version is None:
        expected = " or ".join(f"'{tr}'+'{te}'" for tr, te in _MSMT17_DIRS.values())
        raise _errors().InputFileError(f"MSMT17: expected image folders {expected} under {base}")
    train_dir, test_dir = (base / d for d in _MSMT17_DIRS[version])
    train = _read_msmt17_list(base / "list_train.txt", train_dir, "train")
    if msmt17_use_val:  # torchreid adds the validation images only with `combineall`
        train = pd.concat([train, _read_msmt17_list(base / "list_val.txt", train_dir, "train")], ignore_index=True)
    splits = {
        "train": train,
        "query": _read_msmt17_list(base / "list_query.txt", test_dir, "query"),
        "gallery": _read_msmt17_list(base / "list_gallery.txt", test_dir, "gallery"),
    }
    return splits, []


# --------------------------------------------------------------------------------------------------------------
# CUHK03 (new 767/700 protocol)

# MATLAB v5 data element types -> numpy dtypes (miINT8 .. miUINT64, miUTF8/16/32).
_MI_DTYPES = {
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    9: "f8",
    12: "i8",
    13: "u8",
    16: "u1",
    17: "u2",
    18: "u4",
}
_MI_MATRIX, _MI_COMPRESSED, _MX_CELL, _MX_CHAR = 14, 15, 1, 4


def _mat5_elements(buf: bytes, endian: str) -> Iterator[tuple[int, bytes]]:
    """Yields (type, payload) of the data elements in `buf`, inflating compressed ones."""
    pos = 0
    while pos + 8 <= len(buf):
        (tag,) = struct.unpack_from(endian + "I", buf, pos)
        if tag >> 16:  # small data element: type and size packed in 4 bytes, payload in the next 4
            mi_type, size, start, pos = tag & 0xFFFF, tag >> 16, pos + 4, pos + 8
        else:
            mi_type, size = struct.unpack_from(endian + "II", buf, pos)
            start = pos + 8
            pos = start + size + (0 if mi_type == _MI_COMPRESSED else -size % 8)
        payload = buf[start : start + size]
        if mi_type == _MI_COMPRESSED:
            yield from _mat5_elements(zlib.decompress(payload), endian)
        else:
            yield mi_type, payload


def _mat5_matrix(payload: bytes, endian: str) -> tuple[str, object]:
    """Decodes one miMATRIX element into (name, value): numeric arrays, char arrays (str) and cell arrays
    (object arrays), all in MATLAB's shape; other classes decode to None."""
    parts = list(_mat5_elements(payload, endian))
    if len(parts) < 3:  # an empty cell
        return "", np.zeros((0, 0))
    mx_class = int(np.frombuffer(parts[0][1], endian + "u4")[0]) & 0xFF
    dims = tuple(int(d) for d in np.frombuffer(parts[1][1], endian + "i4"))
    name = parts[2][1].decode("latin-1")
    if mx_class == _MX_CELL:
        cells = np.empty(len(parts) - 3, dtype=object)
        cells[:] = [_mat5_matrix(body, endian)[1] for _, body in parts[3:]]
        return name, cells.reshape(dims, order="F")
    if len(parts) < 4 or parts[3][0] not in _MI_DTYPES:
        return name, None
    data = np.frombuffer(parts[3][1], endian + _MI_DTYPES[parts[3][0]])
    if mx_class == _MX_CHAR:
        text = parts[3][1].decode("utf-8") if parts[3][0] == 16 else "".join(map(chr, data))
        return name, text if dims[0] <= 1 else ["".join(row) for row in np.array(list(text)).reshape(dims, order="F")]
    if 6 <= mx_class <= 15:
        return name, data.reshape(dims, order="F")
    return name, None


def _read_mat5(path: pathlib.Path) -> dict[str, object]:
    """Reads the numeric, char and cell variables of a MATLAB v5/v7 file (uncompressed or compressed)."""
    buf = path.read_bytes()
    if len(buf) < 128 or buf[126:128] not in (b"IM", b"MI"):
        raise _errors().DataError(f"{path} is neither a MATLAB v5/v7 file nor an HDF5 (v7.3) one")
    endian = "<" if buf[126:128] == b"IM" else ">"
    return dict(
        _mat5_matrix(body, endian) for mi_type, body in _mat5_elements(buf[128:], endian) if mi_type == _MI_MATRIX
    )


def _read_split_config(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Reads a CUHK03 new-protocol config (`filelist`, `labels`, `camId`, `*_idx`) from MATLAB v5 or v7.3."""
    import h5py

    keys = ["filelist", "labels", "train_idx", "query_idx", "gallery_idx"]
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            missing = [k for k in keys if k not in f]
            if missing:
                raise _errors().DataError(f"CUHK03: {path} lacks variable(s) {missing}")
            out = {k: np.ravel(f[k][()]) for k in keys if k != "filelist"}
            out["filelist"] = np.array(["".join(map(chr, np.ravel(f[ref][()]))) for ref in np.ravel(f["filelist"][()])])
        return out
    mat = _read_mat5(path)
    missing = [k for k in keys if mat.get(k) is None]
    if missing:
        raise _errors().DataError(f"CUHK03: {path} lacks variable(s) {missing} (convert it with MATLAB `save -v7.3`)")
    out = {k: np.ravel(np.asarray(mat[k]), order="F") for k in keys if k != "filelist"}
    out["filelist"] = np.array([str(c) for c in np.ravel(np.asarray(mat["filelist"], dtype=object), order="F")])
    return out


def _extract_cuhk03_images(mat_path: pathlib.Path, kind: str, target: pathlib.Path) -> None:
    """Writes the `kind` ("labeled"/"detected") images of cuhk-03.mat as `<pair>_<person>_<view>_<image>.png`
    (torchreid's names, 1-based) into `target`, through a temporary folder renamed at the end."""
    import h5py

    logger.info("CUHK03: extracting %s images from %s to %s", kind, mat_path, target)
    from hacnn_tf.io_utils import make_staging_dir

    tmp = make_staging_dir(target.parent, target.name + ".tmp-")
    try:
        with h5py.File(mat_path, "r") as mat:
            for pair, pair_ref in enumerate(np.ravel(mat[kind][()])):
                people = mat[pair_ref][()].T  # (persons, 10) references
                for person in range(people.shape[0]):
                    for index, image_ref in enumerate(people[person]):
                        image = mat[image_ref][()].T
                        if image.size == 0 or image.ndim < 3:
                            continue  # empty cell: this person has fewer images in that view
                        view = 1 if index < 5 else 2
                        name = f"{pair + 1:01d}_{person + 1:03d}_{view:01d}_{index + 1:02d}.png"
                        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(tmp / name)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load_cuhk03(
    root: pathlib.Path, cuhk03_labeled: bool = False
) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]:
    kind = "labeled" if cuhk03_labeled else "detected"
    config_name = f"cuhk03_new_protocol_config_{kind}.mat"
    cache_name = f"images_{kind}"
    candidates = [root, root / "cuhk03"]
    base = next((c for c in candidates if (c / cache_name).is_dir() and (c / config_name).is_file()), None)
    if base is None:
        base = _find_layout("CUHK03", root, candidates, ["cuhk03_release/cuhk-03.mat", config_name])
        _extract_cuhk03_images(base / "cuhk03_release" / "cuhk-03.mat", kind, base / cache_name)
    config = _read_split_config(base / config_name)
    names, labels = config["filelist"], config["labels"]

    def rows(split: str) -> pd.DataFrame:
        idx = config[f"{split}_idx"].astype("int64") - 1  # MATLAB indices are 1-based
        cams = [int(name.split("_")[2]) - 1 for name in names[idx]]
        return _frame(list(zip([str(base / cache_name / n) for n in names[idx]], labels[idx], cams)), split)

    return {split: rows(split) for split in SPLITS}, []


# --------------------------------------------------------------------------------------------------------------
# User data: a folder of train/query/gallery subfolders, or a CSV


def _zero_based_cameras(splits: dict[str, pd.DataFrame]) -> None:
    """Shifts camera ids down by one when the smallest one (over all splits) is 1, i.e. they are 1-based."""
    cams = pd.concat([df["camid"] for df in splits.values()])
    if len(cams) and cams.min() == 1:
        for df in splits.values():
            df["camid"] -= 1


def _load_folder(root: pathlib.Path) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]:
    if root.is_file():
        return _load_csv(root)
    base = _find_layout("folder", root, [root], list(SPLITS))
    splits, skipped = {}, []
    for split in SPLITS:
        rows, bad = _parse_named_dir(base / split, split, _FOLDER_PATTERN)
        splits[split] = _frame(rows, split)
        skipped.append(_skipped_frame(bad))
    _zero_based_cameras(splits)
    return splits, skipped


def _csv_integers(table: pd.DataFrame, column: str, csv_path: pathlib.Path) -> pd.Series:
    """The column's cells as int64; a ValueError naming the first cell that is not an integer and its line."""
    bad = ~table[column].str.fullmatch(r"[+-]?\d+")
    if bad.any():
        line, value = int(table.index[bad][0]) + 2, table.loc[bad, column].iloc[0]
        raise _errors().DataError(
            f"folder: CSV {csv_path} line {line}: {column} {value!r} is not an integer"
            + (" (a fractional id would be truncated and merge identities)" if column == "pid" else "")
        )
    from hacnn_tf.data.identities import integer_ids

    lines = [f"CSV {csv_path} line {index + 2}" for index in table.index]
    return pd.Series(
        integer_ids(
            np.array([int(value) for value in table[column]], dtype=object), f"folder: {column}", lines, np.int64
        ),
        index=table.index,
    )


def _load_csv(csv_path: pathlib.Path) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]:
    try:  # every cell as text, blank lines kept as rows, so that line numbers in errors are the file's
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise _errors().DataError(
            f"folder: CSV {csv_path} is empty; expected a header line path,pid,camid,split and one row per image"
        ) from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise _errors().DataError(
            f"folder: CSV {csv_path} lacks column(s) {missing}; expected columns path,pid,camid,split"
        )
    table = table[_COLUMNS].apply(lambda column: column.str.strip())
    table = table[(table != "").any(axis=1)]  # blank lines
    for column in _COLUMNS:
        empty = table[column] == ""
        if empty.any():
            raise _errors().DataError(
                f"folder: CSV {csv_path} line {int(table.index[empty][0]) + 2}: empty {column} "
                f"cell ({int(empty.sum())} row(s) in all)"
            )
    table["split"] = table["split"].str.lower()
    unknown = sorted(set(table["split"]) - set(SPLITS))
    if unknown:
        raise _errors().DataError(
            f"folder: CSV {csv_path} has split value(s) {unknown}; expected one of {list(SPLITS)}"
        )
    table["pid"], table["camid"] = _csv_integers(table, "pid", csv_path), _csv_integers(table, "camid", csv_path)
    table["path"] = [os.path.normpath(csv_path.parent / p) for p in table["path"]]
    table = table[table["pid"] != -1]
    splits = {
        s: _frame(list(table.loc[table["split"] == s, ["path", "pid", "camid"]].itertuples(index=False)), s)
        for s in SPLITS
    }
    _zero_based_cameras(splits)
    return splits, []


# --------------------------------------------------------------------------------------------------------------
# Entry point

_LOADERS: dict[str, tuple[str, Callable[..., tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]]]] = {
    "market1501": ("Market-1501", _load_market1501),
    "dukemtmcreid": ("DukeMTMC-reID", _load_dukemtmcreid),
    "msmt17": ("MSMT17", _load_msmt17),
    "cuhk03": ("CUHK03", _load_cuhk03),
    "folder": ("folder", _load_folder),
}
_ALIASES = {
    "market": "market1501",
    "duke": "dukemtmcreid",
    "dukemtmc": "dukemtmcreid",
    "msmt": "msmt17",
    "custom": "folder",
    "csv": "folder",
}
DATASET_NAMES = tuple(_LOADERS)


def _canonical_name(name: str) -> str:
    key = re.sub(r"[\s_\-.]", "", name.lower())
    key = _ALIASES.get(key, key)
    if key not in _LOADERS:
        raise _errors().DataError(
            f"unknown data set {name!r}; expected one of {list(DATASET_NAMES)} (or an alias: {sorted(_ALIASES)})"
        )
    return key


def load_dataset(name: str, root: str | os.PathLike, *, verify: bool = True, **options: object) -> ReIDDataset:
    """Loads a re-id data set's train/query/gallery tables.

    Args:
        name: `market1501`, `dukemtmcreid`, `msmt17`, `cuhk03` or `folder` (case-insensitive; dashes, underscores
            and aliases such as "Market-1501", "duke", "msmt", "csv" are accepted).
        root: the folder holding the data set (or its parent; see each reader), or a CSV file for `folder`. The
            `name` of a set written by `hacnn_tf.data.synthetic` is `synthetic (<reader's name> layout)`.
        verify: decode every image as training and serving do (`verify_images`, TensorFlow's decoders, in
            parallel) and skip, log and list in `skipped` the ones that fail.
        **options: `cuhk03_labeled` (bool, CUHK03: labelled instead of detected boxes) and `msmt17_use_val`
            (bool, MSMT17: add `list_val.txt` to training, which torchreid does only with `combineall`).

    Raises:
        InputFileError: (a FileNotFoundError) the root or an expected folder/file is missing (the message
            names it and the layout expected).
        DataError: (a ValueError) unknown name, malformed CSV / split file (a CSV error names the line: empty
            cells, ids or cameras that are not integers).
        TypeError: an option that the reader does not take.
    """
    key = _canonical_name(name)
    label, loader = _LOADERS[key]
    accepted = list(inspect.signature(loader).parameters)[1:]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"load_dataset({key!r}) got unknown option(s) {unknown}; accepted: {accepted}")
    root = pathlib.Path(root).expanduser().absolute()
    splits, skipped = loader(root, **options)
    from hacnn_tf.data.synthetic import MARKER_FILE

    if (root / MARKER_FILE).is_file():  # written by `hacnn_tf.data.synthetic`: say so in tables and figures
        label = f"synthetic ({label} layout)"
    return _finalise(label, splits, skipped, verify)
