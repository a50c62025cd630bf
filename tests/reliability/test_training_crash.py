"""Crash safety of a training run's epoch-end writes (best and last checkpoints, CSV log, backup) and of the start of
the next run: the process is killed, or the disk fills, at every step, and the next run must resume from exactly one
committed epoch: its weights, optimizer state, CSV rows and best threshold, with nothing left over.

The steps are the file-system operations under the run's folder, recorded in a child process by an audit hook
(`open` for writing, `os.rename`/`os.replace`, `os.remove`, `os.rmdir`, `os.mkdir`, `shutil.rmtree`,
`shutil.copyfile`) and a wrapped `os.fsync`; production code has no test hooks. A "kill" ends the process with
`os._exit(137)` just before step k (no cleanup runs, as with SIGKILL); a "torn" kill first cuts the file being
flushed to half its length (the kill came halfway through writing it); "ENOSPC" makes step k raise `OSError(ENOSPC)`.
The epochs are written by the real callbacks (`build_callbacks`, with the evaluation replaced by logged values) on a
small Keras model whose "training" sets every weight and optimizer variable to a function of the epoch, so the
restored state is compared exactly. A real full disk, a small tmpfs, runs the same epoch end with every amount of
free space, where mounting is permitted.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from hacnn_tf.callbacks import CHECKPOINT_INFO, checkpoint_info, committed_backups, restore_backup
from hacnn_tf.run_folder import open_run

# Shared by the child process and the checks here.
SCENARIO = r'''
import pathlib, types
import keras, numpy as np
from hacnn_tf.callbacks import ReIDEvaluation
from hacnn_tf.config import load_config
from hacnn_tf.run_folder import open_run
from hacnn_tf.trainer import build_callbacks
from hacnn_tf.callbacks import restore_backup

MAPS = (0.5, 0.7)  # the val_mAP of epochs 1 and 2, each a new best


def make_model():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5), keras.layers.BatchNormalization(),
                              keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def set_state(model, epoch):
    """What "training" `epoch` epochs leaves in the model and its optimizer: values that depend on the epoch only."""
    rng = np.random.default_rng(epoch)
    for variable in [*model.weights, *model.optimizer.variables]:
        floating = "float" in str(variable.dtype)
        value = rng.normal(size=variable.shape) if floating else np.full(variable.shape, 10 * epoch)
        variable.assign(value.astype(variable.dtype))


def run_config(run_dir):
    return load_config(None, [f"output.dir={run_dir}", "train.epochs=3", "output.tensorboard=false"])


class Measured(keras.callbacks.Callback):
    """In place of ReIDEvaluation: logs the epoch's val_mAP."""

    def on_epoch_end(self, epoch, logs=None):
        logs["val_mAP"] = MAPS[epoch]


def train_epoch(run_dir, model, epoch):
    """A process's part of a run: open it (resuming from its backup), "train" `epoch`, end the epoch as fit does."""
    config = run_config(run_dir)
    with open_run(config) as run:
        assert run.initial_epoch == epoch, (run.initial_epoch, epoch)
        if run.backup is not None:
            restore_backup(model, run.backup)
        no_data = types.SimpleNamespace(query=None, gallery=None)
        callbacks = [Measured() if isinstance(c, ReIDEvaluation) else c
                     for c in build_callbacks(config, no_data, pathlib.Path(run_dir), run)]
        hooks = keras.callbacks.CallbackList(callbacks, model=model)
        hooks.on_train_begin()
        hooks.on_epoch_begin(epoch)
        set_state(model, epoch + 1)
        hooks.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
        hooks.on_train_end()


def scenario(run_dir):
    """Epoch 1 in a fresh run, then a second process resuming it for epoch 2."""
    model = make_model()
    train_epoch(run_dir, model, 0)
    train_epoch(run_dir, model, 1)
'''

# The child: records the steps of `scenario`, kills a forked copy of itself at each (forked before TensorFlow runs
# anything, so each copy starts clean), then makes each step fail with ENOSPC in turn in its own process.
CHILD = r'''
import errno, json, os, sys, traceback
root, results = sys.argv[1:3]
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
EVENTS = ("os.mkdir", "shutil.rmtree", "shutil.copyfile")


class Faults:
    top, count, at, action, steps = None, 0, None, None, []

    def step(self, event, path, target=None):
        path = os.path.realpath(os.fsdecode(path))
        if self.top is None or not (path == self.top or path.startswith(self.top + os.sep)):
            return
        self.count += 1
        where = os.path.relpath(path, self.top)
        if target is not None:
            where += " -> " + os.path.relpath(os.path.realpath(os.fsdecode(target)), self.top)
        self.steps.append([event, where, os.path.isfile(path), os.path.exists(path)])
        if self.count != self.at:
            return
        if self.action == "torn":
            os.truncate(path, os.path.getsize(path) // 2)
        if self.action in ("kill", "torn"):
            os._exit(137)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


faults = Faults()


def resolve(path, dir_fd=None):
    """`path`, relative to the folder `dir_fd` is open on (as `shutil.rmtree` deletes) when there is one."""
    if dir_fd is None or dir_fd < 0:  # the audit events pass -1 for no folder
        return path
    return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), os.fsdecode(path))


def audit(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path, mode, flags = args
        if any(c in mode for c in "wax+") if isinstance(mode, str) else flags & WRITE:
            faults.step("open", path)
    elif event == "os.rename":
        faults.step(event, resolve(args[0], args[2]), resolve(args[1], args[3]))
    elif event in ("os.remove", "os.rmdir"):
        faults.step(event, resolve(*args))
    elif event in EVENTS:
        faults.step(event, args[0])


real_fsync = os.fsync


def fsync(fd):
    faults.step("fsync", os.readlink(f"/proc/self/fd/{fd}"))
    real_fsync(fd)


sys.addaudithook(audit)
os.fsync = fsync
namespace = {}
exec(SCENARIO, namespace)


def start(name, at=None, action=None):
    pid = os.fork()
    if pid == 0:
        faults.top, faults.at, faults.action = os.path.join(root, name), at, action
        try:
            namespace["scenario"](faults.top)
            with open(os.path.join(root, name + ".steps.json"), "w") as handle:
                json.dump(faults.steps, handle)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    return pid


def wait(pids):
    return {name: os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for name, pid in pids.items()}


codes = wait({"count": start("count")})
with open(os.path.join(root, "count.steps.json")) as handle:
    steps = json.load(handle)
plan = [(f"kill-{k}", k, "kill") for k in range(1, len(steps) + 1)]
plan += [(f"torn-{k}", k, "torn") for k, (event, _, is_file, _) in enumerate(steps, 1) if event == "fsync" and is_file]
for first in range(0, len(plan), 2):
    codes.update(wait({name: start(name, k, action) for name, k, action in plan[first:first + 2]}))

enospc = {}
for k in range(1, len(steps) + 1):
    faults.top, faults.count, faults.at, faults.action = os.path.join(root, f"enospc-{k}"), 0, k, "enospc"
    try:
        namespace["scenario"](faults.top)
        enospc[k] = "completed"
    except OSError as error:
        enospc[k] = "ENOSPC" if error.errno == errno.ENOSPC else f"errno {error.errno}: {error}"
    except BaseException as error:
        enospc[k] = f"{type(error).__name__}: {error}"
faults.top = None
with open(results, "w") as handle:
    json.dump({"steps": steps, "codes": codes, "enospc": enospc}, handle)
'''.replace("exec(SCENARIO, namespace)", f"exec({SCENARIO!r}, namespace)")

NAMESPACE: dict = {}
exec(SCENARIO, NAMESPACE)


def check_resumable(run_dir: pathlib.Path) -> int:
    """Opens the run as the next process does; checks that it resumes from exactly one committed epoch, whose
    weights and optimizer state, CSV rows and best threshold are that epoch's, and that nothing is left over.
    Returns the epoch it resumes at."""
    with open_run(NAMESPACE["run_config"](run_dir)) as run:
        epoch = run.initial_epoch
        hidden = [p.name for folder in (run_dir, run_dir / "backup") for p in folder.iterdir() if p.name[0] == "."]
        assert not hidden, f"left over after the restart: {hidden}"
        assert [p.name for p in committed_backups(run_dir / "backup")] == [f"epoch-{epoch:06d}"][:epoch]
        if epoch:
            restored, expected = NAMESPACE["make_model"](), NAMESPACE["make_model"]()
            restore_backup(restored, run.backup)
            NAMESPACE["set_state"](expected, epoch)
            for a, b in zip(
                [*restored.weights, *restored.optimizer.variables],
                [*expected.weights, *expected.optimizer.variables],
                strict=True,
            ):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"{run_dir}: {b.path}")
            log = pd.read_csv(run_dir / "training_log.csv")
            assert log["epoch"].tolist() == list(range(1, epoch + 1)), f"{run_dir}: CSV rows {log['epoch'].tolist()}"
            np.testing.assert_allclose(log["val_mAP"], NAMESPACE["MAPS"][:epoch])
        for name in ("best.keras", "last.keras"):  # whole checkpoints, or none
            if (run_dir / name).exists():
                with zipfile.ZipFile(run_dir / name) as archive:
                    assert archive.testzip() is None and {"config.json", "model.weights.h5", CHECKPOINT_INFO} <= set(
                        archive.namelist()
                    ), f"{run_dir / name}: {archive.namelist()}"
        # The threshold is never below the best.keras on disk (which may be of the epoch that was not committed).
        info = checkpoint_info(run_dir / "best.keras")
        reached = [*NAMESPACE["MAPS"][:epoch], *([info["value"]] if info else [])]
        assert run.best == (max(reached) if reached else None), (run_dir, run.best, info)
    return epoch


@pytest.fixture(scope="module")
def fault_matrix(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    results = root / "results.json"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(results)],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert child.returncode == 0, child.stderr[-4000:]
    return root, json.loads(results.read_text())


def test_a_kill_at_any_step_of_an_epoch_end_or_a_restart_leaves_one_committed_epoch(fault_matrix):
    root, results = fault_matrix
    steps, codes = results["steps"], results["codes"]
    assert codes.pop("count") == 0
    assert check_resumable(root / "count") == 2
    # Every kind of step is in the matrix: the checkpoints' temporary files, the staging folder, the commit...
    names = [f"{event} {path}" for event, path, *_ in steps]
    for expected in (
        "os.mkdir backup",
        "-> backup/epoch-000001",
        "-> backup/epoch-000002",
        "open training_log.csv",
        "fsync backup",
        "os.rename backup/epoch-000001 -> backup/.trash-",
        "shutil.rmtree backup/.trash-",
    ):
        assert any(expected in name for name in names), expected
    rows, previous = [], 0
    for name in sorted(codes, key=lambda n: (int(n.split("-")[1]), n)):
        action, k = name.split("-")
        step = " ".join(steps[int(k) - 1][:2])
        assert codes[name] == 137, f"{name} ({step}): exit {codes[name]}, expected the kill"
        epoch = check_resumable(root / name)
        if action == "kill":
            assert epoch >= previous, f"kill before step {k} ({step}) resumes at {epoch}, an earlier one at {previous}"
            previous = epoch
        rows.append(f"{k:>3} {action:4} {step:60} -> resumes at epoch {epoch}")
    assert previous == 2 and {row.split()[-1] for row in rows} == {"0", "1", "2"}
    print("\n".join(rows))


def test_a_full_disk_at_any_step_fails_clearly_and_leaves_one_committed_epoch(fault_matrix):
    root, results = fault_matrix
    steps, outcomes = results["steps"], results["enospc"]
    assert len(outcomes) == len(steps)
    for k, outcome in outcomes.items():
        step = " ".join(steps[int(k) - 1][:2])
        event, _, _, existed = steps[int(k) - 1]
        # A failed deletion of a superseded backup is only a warning: the new backup is committed already. The
        # mkdir of a folder that exists is an error that `mkdir(exist_ok=True)` ignores.
        deletion = ".trash-" in step and event in ("os.rename", "os.remove", "os.rmdir", "shutil.rmtree")
        harmless = deletion or (event == "os.mkdir" and existed)
        assert outcome == "ENOSPC" or (outcome == "completed" and harmless), f"step {k} ({step}): {outcome}"
        epoch = check_resumable(root / f"enospc-{k}")
        print(f"{k:>3} {step:60} {outcome:9} -> resumes at epoch {epoch}")


def fill(mount: pathlib.Path, free: int) -> pathlib.Path:
    """Fills the file system of `mount` up to `free` bytes left (in pages)."""
    stats = os.statvfs(mount)
    filler = mount / "filler"
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - free))
    return filler


def test_a_real_full_disk_during_an_epoch_end_fails_clearly_and_leaves_one_committed_epoch(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if mounted.returncode:
        pytest.skip(
            f"mounting a tmpfs is not permitted here ({mounted.stderr.strip()}); the full disk is covered by "
            f"the ENOSPC steps of test_a_full_disk_at_any_step_fails_clearly_and_leaves_one_committed_epoch"
        )
    try:
        model, outcomes = NAMESPACE["make_model"](), []
        for free in range(0, 200 * 4096, 4096):
            run_dir = mount / "run"
            NAMESPACE["train_epoch"](run_dir, model, 0)
            filler = fill(mount, free)
            try:
                NAMESPACE["train_epoch"](run_dir, model, 1)
                outcome = "completed"
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                outcome = "ENOSPC"
            finally:
                filler.unlink()
            outcomes.append((free, outcome, check_resumable(run_dir)))
            shutil.rmtree(run_dir)
            if outcome == "completed":
                break
        print(
            "\n".join(
                f"{free:>7} bytes free: {outcome:9} -> resumes at epoch {epoch}" for free, outcome, epoch in outcomes
            )
        )
        assert outcomes[0][1] == "ENOSPC" and outcomes[-1][1:] == ("completed", 2)
        assert {epoch for _, outcome, epoch in outcomes if outcome == "ENOSPC"} == {1}
    finally:
        subprocess.run(["umount", str(mount)], check=True)
