"""`hacnn_tf.io_utils.staging_folder` and `remove_stale_staging`: a result appears whole, an exception leaves nothing,
and a cleaner removes only the folders of writers that are gone."""

import os
import time

import pytest

from hacnn_tf.io_utils import STAGING_LOCK, UNLOCKED_GRACE_SECONDS, remove_stale_staging, staging_folder


def test_a_result_renamed_out_is_kept_and_the_folder_removed(tmp_path):
    with staging_folder(tmp_path, ".job.partial-") as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".job.partial-")
        (staging / "result").write_text("whole")
        os.replace(staging / "result", tmp_path / "result")
    assert (tmp_path / "result").read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]


def test_an_exception_leaves_no_staging_folder(tmp_path):
    with pytest.raises(OSError, match="disk full"), staging_folder(tmp_path, ".job.partial-", locked=True) as staging:
        (staging / "half").write_text("half")
        raise OSError("disk full")
    assert not list(tmp_path.iterdir())


def test_the_folder_has_the_umask_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    with staging_folder(tmp_path / "new", ".job.partial-") as staging:
        assert staging.stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_cleaner_removes_only_the_folders_of_writers_that_are_gone(tmp_path):
    killed = tmp_path / ".1.partial-killed"  # a writer killed after taking its lock: the lock file, no holder
    killed.mkdir()
    (killed / STAGING_LOCK).touch()
    young, old = tmp_path / ".2.partial-young", tmp_path / ".3.partial-old"  # killed before taking it
    young.mkdir()
    old.mkdir()
    stamp = time.time() - UNLOCKED_GRACE_SECONDS - 1
    os.utime(old, (stamp, stamp))
    (tmp_path / ".4.partial-file").touch()  # not a folder
    (tmp_path / "1").mkdir()  # not matched
    with staging_folder(tmp_path, ".5.partial-", locked=True) as live:
        removed = remove_stale_staging(tmp_path, ".*.partial-*")
        assert sorted(removed) == [killed, old]
        assert live.is_dir() and young.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".2.partial-young", ".4.partial-file", "1"]
    assert remove_stale_staging(tmp_path, ".*.partial-*", grace_seconds=0) == [young]


def test_without_flock_no_folder_is_taken_for_stale(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_fcntl(name, *args, **kwargs):
        if name == "fcntl":
            raise ImportError("no fcntl here")
        return real_import(name, *args, **kwargs)

    killed = tmp_path / ".1.partial-killed"
    killed.mkdir()
    (killed / STAGING_LOCK).touch()
    monkeypatch.setattr(builtins, "__import__", no_fcntl)
    assert remove_stale_staging(tmp_path, ".*.partial-*", grace_seconds=0) == []
    monkeypatch.undo()
    assert remove_stale_staging(tmp_path, ".*.partial-*", grace_seconds=0) == [killed]
