"""The child processes of an export (tf2onnx's converter, the SavedModel self-check): each dies with the exporting
process and keeps its temporary files in the folder the export gives it, so that a killed export leaves no process
running and nothing outside its own staging folder, which the next export removes."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

from hacnn_tf._startup import native_log_environment

_PR_SET_PDEATHSIG = 1


def _die_with_parent_fn() -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to SIGKILL the child when the process that started it dies (`PR_SET_PDEATHSIG`);
    None where there is no `prctl`.

    `prctl` is looked up here, in the parent: the child runs between `fork` and `exec` of a process with many
    threads, where loading a library could deadlock. A parent that died before the call (the signal would never
    come) is seen as a changed parent id, and the child exits at once."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return die_with_parent


def child_environment(scratch_dir: str | os.PathLike) -> dict[str, str]:
    """The environment of an export's child: `native_log_environment()` with `TMPDIR` (and Windows' `TMP`, `TEMP`)
    set to `scratch_dir`, so that what the child and its libraries put in the temporary folder stays there."""
    scratch = os.fspath(scratch_dir)
    return {**native_log_environment(), "TMPDIR": scratch, "TMP": scratch, "TEMP": scratch}


def run_child(command: Sequence[str], scratch_dir: str | os.PathLike) -> subprocess.CompletedProcess:
    """Runs `command` to its end with its output captured as text (`subprocess.run`), in `child_environment
    (scratch_dir)`, killed when this process dies; returns the completed process (its return code unchecked)."""
    return subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        check=False,
        env=child_environment(scratch_dir),
        preexec_fn=_die_with_parent_fn(),
    )
