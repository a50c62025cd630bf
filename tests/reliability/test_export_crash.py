"""Crash safety of `export_all` (hacnn_tf/export/all.py), the job of `hacnn-tf export`: the exporting process
SIGKILLed during each converter leaves no process running (the converters' children die with it) and nothing
outside its staging folder in OUT (its `$TMPDIR` stays empty), and the next run into OUT, even one that is refused,
removes that staging folder. A real full disk (a small tmpfs, where mounting is permitted) keeps the formats already
written, names the failed one, and the free space it says is needed is enough to export the rest. The injected
ENOSPC of the command's one-line error is in tests/cli/test_export_command.py."""

from __future__ import annotations

import concurrent.futures
import errno
import math
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

from hacnn_tf.errors import OutputError
from hacnn_tf.export import all as export_all_module
from hacnn_tf.export import export_all, verify_manifest
from hacnn_tf.export.all import _output_os_error

TESTS = pathlib.Path(__file__).resolve().parents[1]
# The exporter: `export_all` of a tiny model into OUT, the formats of one converter. The in-process converters
# (TFLite, OpenVINO) are held, once they have written their first temporary files, until the test kills the process;
# the SavedModel self-check and tf2onnx run in child processes, which the test finds and kills the exporter under.
EXPORTER = r'''
import pathlib, sys, time
out, converter, saved_model, marker, tests = sys.argv[1:6]
sys.path.insert(0, tests)
from conftest import TINY_MODEL
from hacnn_tf import HACNN
from hacnn_tf.export import export_all


def hold_after(module, name):
    """`module.name` that, once it has returned, writes `marker` and waits to be killed."""
    function = getattr(module, name)

    def held(*args, **kwargs):
        result = function(*args, **kwargs)
        pathlib.Path(marker).write_text(name)
        time.sleep(600)
        return result

    setattr(module, name, held)


if converter == "tflite":
    import hacnn_tf.export.tflite as tflite
    hold_after(tflite, "_signature_saved_model")  # the batch-1 SavedModel, in the converter's temporary folder
elif converter == "openvino":
    import openvino
    hold_after(openvino, "save_model")  # the IR, in its staging folder
formats = {"saved_model": ["saved_model-fp32"], "tflite": ["tflite-fp32"], "onnx": ["onnx-fp32"],
           "openvino": ["openvino-fp32"]}[converter]
export_all(HACNN(None, **TINY_MODEL), out, formats, saved_model=None if converter == "saved_model" else saved_model)
'''
# The child process each converter runs in, by a word of its command line (None: in the exporter's own process).
CHILDREN = {"saved_model": "tf_serving_loader", "tflite": None, "onnx": "tf2onnx.convert", "openvino": None}
EXISTING = "tflite-dynamic"  # a format folder OUT holds already: the run after the kill is refused for it


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs."""
    found = []
    for task in pathlib.Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(n) for n in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def alive(pid: int) -> bool:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def command_line(pid: int) -> bytes:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def processes_naming(path: pathlib.Path) -> list[int]:
    """Live processes whose command line holds `path`."""
    return [
        int(p.name)
        for p in pathlib.Path("/proc").iterdir()
        if p.name.isdigit() and str(path).encode() in command_line(int(p.name)) and alive(int(p.name))
    ]


def kill_during(converter: str, root: pathlib.Path, saved_model: pathlib.Path) -> dict:
    """Starts the exporter of `converter` into `root/out` and SIGKILLs it while the converter runs; returns what
    was there at the kill and after it."""
    out, tmpdir, marker = root / "out", root / "tmp", root / "held"
    (out / EXISTING).mkdir(parents=True)
    tmpdir.mkdir()
    exporter = subprocess.Popen(
        [sys.executable, "-c", EXPORTER, str(out), converter, str(saved_model), str(marker), str(TESTS)],
        env={**os.environ, "TMPDIR": str(tmpdir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline, child = time.monotonic() + 300, None
    while time.monotonic() < deadline and exporter.poll() is None:
        if CHILDREN[converter] is None:
            if marker.exists():
                break
        else:
            child = next(
                (pid for pid in descendants(exporter.pid) if CHILDREN[converter].encode() in command_line(pid)), None
            )
            if child is not None:
                time.sleep(2)  # under way: TensorFlow imported, the model being read
                break
        time.sleep(0.05)
    running = exporter.poll() is None
    children = descendants(exporter.pid)
    exporter.send_signal(signal.SIGKILL)
    stderr = exporter.communicate()[1].decode(errors="replace")
    for _ in range(200):
        if not any(alive(pid) for pid in children):
            break
        time.sleep(0.05)
    return {
        "running": running,
        "child": child,
        "children": children,
        "survivors": [pid for pid in children if alive(pid)],
        "naming_out": processes_naming(out),
        "tmpdir": sorted(p.name for p in tmpdir.iterdir()),
        "out": sorted(p.name for p in out.iterdir()),
        "staged": sorted(p.relative_to(out).as_posix() for p in out.glob(".export-all.partial-*/**/*")),
        "stderr": stderr[-3000:],
    }


@pytest.mark.slow
def test_an_export_killed_during_each_converter_leaves_no_process_and_no_temporary_file(
    export_model, exported_saved_model, tmp_path
):
    """The SavedModel self-check child died with its parent before; tf2onnx's converter did not (it ran on, an
    orphan), and the TFLite and tf2onnx temporary folders stayed in the system's temporary folder for good."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = dict(
            zip(
                CHILDREN,
                pool.map(
                    lambda converter: kill_during(converter, tmp_path / converter, exported_saved_model), CHILDREN
                ),
            )
        )
    for converter, run in runs.items():
        assert run["running"], (converter, run["stderr"])
        if CHILDREN[converter] is not None:
            assert run["child"] in run["children"], (converter, run)
        assert run["survivors"] == [] and run["naming_out"] == [], (converter, run)
        # (TensorFlow's AutoGraph leaves its generated modules in $TMPDIR in any killed TF process; nothing else may.)
        assert [name for name in run["tmpdir"] if not name.startswith("__autograph_generated_file")] == [], (
            converter,
            run,
        )
        staging = [name for name in run["out"] if name.startswith(export_all_module.STAGING_PREFIX)]
        assert len(staging) == 1 and sorted(run["out"]) == sorted([EXISTING, *staging]), (converter, run)
        assert run["staged"], (converter, run)  # the converter had written into the staging folder
        out = tmp_path / converter / "out"
        with pytest.raises(FileExistsError, match=EXISTING):  # refused: the staging folder goes all the same
            export_all(export_model, out, [EXISTING])
        assert sorted(p.name for p in out.iterdir()) == [EXISTING], converter


def test_errors_that_carry_only_a_text_are_read_as_the_full_disk_they_report():
    """TensorFlow's file writers raise `ResourceExhaustedError("<path>; No space left on device")`, and a converter
    child's failure is a RuntimeError holding its stderr; any other error stays an internal one."""
    import tensorflow as tf

    error = _output_os_error(
        tf.errors.ResourceExhaustedError(
            None, None, "/out/.export-all.partial-x/batch1/saved_model.pb.tmp0; No space left on device"
        )
    )
    assert (error.errno, error.filename) == (errno.ENOSPC, "/out/.export-all.partial-x/batch1/saved_model.pb.tmp0")
    child = RuntimeError("tf2onnx could not convert /m:\nOSError: [Errno 122] Disk quota exceeded")
    assert _output_os_error(child).errno == errno.EDQUOT
    try:
        try:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), "/ro/x")
        except OSError as cause:
            raise RuntimeError("conversion failed") from cause
    except RuntimeError as wrapped:
        assert _output_os_error(wrapped).filename == "/ro/x"
    assert _output_os_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "/x")) is None
    assert _output_os_error(ValueError("shape mismatch")) is None


@pytest.mark.slow
def test_a_real_full_disk_keeps_the_formats_written_and_the_space_it_names_is_enough(
    export_model, exported_saved_model, tmp_path
):
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if mounted.returncode:
        pytest.skip(
            f"mounting a tmpfs is not permitted here ({mounted.stderr.strip()}); the full disk is covered by "
            "the injected ENOSPC of test_a_full_disk_keeps_the_formats_written_and_names_the_failed_one"
        )
    try:
        out = mount / "out"
        formats = ["saved_model-fp32", "tflite-fp32", "onnx-fp32"]
        with pytest.raises(OutputError) as info:
            export_all(export_model, out, formats, saved_model=exported_saved_model)
        message = str(info.value)
        assert info.value.errno == errno.ENOSPC
        assert (
            ": No space left on device: tflite-fp32 failed; not started: onnx-fp32; kept in "
            f"{out}: saved_model-fp32; " in message
        ), message
        assert sorted(p.name for p in out.iterdir()) == ["saved_model-fp32"]  # no staging folder left
        verify_manifest(out / "saved_model-fp32")
        needed = float(re.search(r"about ([\d.]+) MiB needed for tflite-fp32, onnx-fp32", message)[1])
        stats = os.statvfs(mount)
        used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
        subprocess.run(["mount", "-o", f"remount,size={used + math.ceil(needed * 2**20)}", str(mount)], check=True)
        written = export_all(export_model, out, formats[1:], saved_model=exported_saved_model)
        assert sorted(written) == sorted(formats[1:]) and sorted(p.name for p in out.iterdir()) == sorted(formats)
    finally:
        subprocess.run(["umount", str(mount)], check=True)
