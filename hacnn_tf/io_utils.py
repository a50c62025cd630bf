"""Atomic file output: reports, checkpoints and exports appear whole or not at all (`atomic_output` for one file,
`staging_folder` for a folder or a group of files), and the locks that keep concurrent writers and cleaners apart."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from hacnn_tf.errors import OutputError

if TYPE_CHECKING:
    import keras

# The temporary files `atomic_output` writes: `.<stem>.<32 hex digits>.partial<suffix>`.
PARTIAL_FILE = re.compile(r"^\..+\.[0-9a-f]{32}\.partial(\.[^.]+)?$")
TRASH_PREFIX = ".trash-"
# The lock file of a `staging_folder(..., locked=True)`, held while the folder is in use.
STAGING_LOCK = ".lock"
# A staging folder without its lock file is taken for a killed writer's only once it is this old (its owner may be
# creating the lock this instant).
UNLOCKED_GRACE_SECONDS = 600


def fsync_path(path: str | os.PathLike) -> None:
    """Flushes a file, or a folder's entries (so that a rename in it survives a power loss), to the disk."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if os.path.isdir(path):  # Windows cannot open a folder, nor needs to sync one
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, durable: bool = False) -> Iterator[pathlib.Path]:
    """Yields a temporary path beside `path` (same suffix); on success it is moved onto `path` with `os.replace`.

    A crash or an exception leaves `path` as it was (the previous version, or nothing) and no temporary file; a
    kill (no cleanup runs) can leave the temporary file, which `remove_partial_files` finds. With `durable`, the new
    file is flushed to the disk before the rename and the rename after it, so that a power loss keeps either version
    whole.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.partial{path.suffix}")
    try:
        yield tmp
        if durable:
            fsync_path(tmp)
        os.replace(tmp, path)
        if durable:
            fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike) -> pathlib.Path:
    """Fails at once where `atomic_output(path)` would fail only at the end of a long job: creates `path`'s folder
    if missing and a temporary file in it (removed at once). Raises `hacnn_tf.errors.OutputError` (a `UserError`
    and an `OSError`: a folder that cannot be created, no permission, a read-only, full or virtual file system)
    naming `path` and its folder; returns `path`."""
    path = pathlib.Path(path)
    probe = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.partial{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.open("xb").close()
    except OSError as error:
        raise OutputError(
            f"{path}: cannot be written ({error.strerror or error} in {path.parent}); choose another output path, "
            "or fix the permissions or free space there",
            error.errno,
            str(path.parent),
        ) from None
    probe.unlink()
    return path


def save_model_atomically(model: keras.Model, output: str | os.PathLike, durable: bool = False) -> pathlib.Path:
    """`model.save(output)` for a `.keras` file, through `atomic_output`."""
    output = pathlib.Path(output)
    if output.suffix != ".keras":
        raise ValueError(f"Output must be a .keras file; got {output}")
    with atomic_output(output, durable=durable) as tmp:
        model.save(tmp)
    return output


def remove_partial_files(directory: str | os.PathLike) -> list[pathlib.Path]:
    """Deletes the temporary files that killed `atomic_output` writes left directly in `directory`; returns them."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    removed = [path for path in directory.iterdir() if PARTIAL_FILE.match(path.name) and path.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Holds an exclusive `flock` on the file `path` (created if needed), or on the folder `path`, for the `with`
    block; raises `RuntimeError` at once if another process holds it. The kernel releases it when the process dies, so
    a killed
    holder leaves no stale lock. Where `fcntl` does not exist (Windows) nothing is locked."""
    path = pathlib.Path(path)
    try:
        import fcntl
    except ImportError:
        yield path
        return
    fd = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{path} is locked: another process is using {path.parent}") from None
        yield path
    finally:
        os.close(fd)


def move_aside(path: str | os.PathLike) -> pathlib.Path:
    """Renames `path` to a free `<path>.old-<YYYYmmdd-HHMMSS>[-N]` beside it (never deletes); returns the new path."""
    path = pathlib.Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.old-{stamp}")
    number = 1
    while target.exists():
        target = path.with_name(f"{path.name}.old-{stamp}-{number}")
        number += 1
    os.rename(path, target)
    fsync_path(path.parent)
    return target


def remove_tree(path: str | os.PathLike) -> None:
    """Deletes a folder so that no half-deleted copy of it stays under its name: it is first renamed to a hidden
    `.trash-<uuid>` beside it (which `remove_partial_dirs` deletes if a kill interrupts the deletion)."""
    path = pathlib.Path(path)
    trash = path.with_name(f"{TRASH_PREFIX}{uuid.uuid4().hex}")
    os.rename(path, trash)
    shutil.rmtree(trash)


def remove_partial_dirs(
    directory: str | os.PathLike, prefixes: tuple[str, ...] = (TRASH_PREFIX,)
) -> list[pathlib.Path]:
    """Deletes the folders directly in `directory` whose names start with one of `prefixes` (the leftovers of
    interrupted `remove_tree` calls and of other staged writes); returns them."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    removed = [path for path in directory.iterdir() if path.name.startswith(prefixes) and path.is_dir()]
    for path in removed:
        shutil.rmtree(path)
    return removed


def make_staging_dir(parent: str | os.PathLike, prefix: str) -> pathlib.Path:
    """A new empty folder in `parent` (created if missing) named `<prefix><random>`, to be filled and then renamed
    to a result: `tempfile.mkdtemp` with the permissions `os.mkdir` gives (0o777 less the umask) instead of its
    0o700, so that the renamed result is readable as any other folder the user creates."""
    parent = pathlib.Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    folder = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    umask = os.umask(0o022)  # read by setting it; restored at once
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    return folder


@contextlib.contextmanager
def staging_folder(parent: str | os.PathLike, prefix: str, locked: bool = False) -> Iterator[pathlib.Path]:
    """A new hidden folder `<prefix><random>` in `parent` (`make_staging_dir`) for the `with` block, where a result is
    written whole before it is renamed into place; removed when the block ends, by an exception too (a result renamed
    out of it, or the folder itself renamed, is kept). A kill leaves it: with `locked` it holds an exclusive `flock`
    on its `STAGING_LOCK` file meanwhile, so that `remove_stale_staging` tells it from one whose process is gone."""
    folder = make_staging_dir(parent, prefix)
    with contextlib.ExitStack() as stack:
        try:
            if locked:
                stack.enter_context(exclusive_lock(folder / STAGING_LOCK))
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def remove_stale_staging(
    parent: str | os.PathLike, pattern: str, grace_seconds: float = UNLOCKED_GRACE_SECONDS
) -> list[pathlib.Path]:
    """Removes the `staging_folder(..., locked=True)` folders in `parent` matching the glob `pattern` whose process is
    gone (killed mid-write: its lock is free); returns them. A folder whose lock is held is in use and kept; one
    without a lock file is removed only once it is `grace_seconds` old (its owner may be creating the lock now).
    Where `fcntl` does not exist (Windows) a live writer cannot be told from a killed one: nothing is removed."""
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return []
    removed = []
    for folder in pathlib.Path(parent).glob(pattern):
        if not folder.is_dir():
            continue
        lock = folder / STAGING_LOCK
        if not lock.exists() and time.time() - folder.stat().st_mtime < grace_seconds:
            continue
        try:
            with exclusive_lock(lock):
                shutil.rmtree(folder, ignore_errors=True)
        except RuntimeError:  # held: a live writer
            continue
        removed.append(folder)
    return removed
