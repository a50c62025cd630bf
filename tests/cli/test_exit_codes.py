"""The exit-code and error contract of `hacnn-tf` (hacnn_tf/cli/__init__.py), each subcommand run as a user runs it:
a subprocess from an empty folder. A user error exits 2 with one line `hacnn-tf SUB: error: ...` naming the field or
file and no traceback (`--debug` / `HACNN_TF_DEBUG=1` add it); an internal error keeps its traceback and exits 1;
success exits 0. The commands run a few at a time (each pays TensorFlow's import) and are checked one by one."""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from hacnn_tf.manifest import write_manifest
from hacnn_tf.visualization.curves import write_cmc_csv

REPO = pathlib.Path(__file__).resolve().parents[2]
HACNN_TF = [sys.executable, "-m", "hacnn_tf.cli"]
CONCURRENT = 4
UNWRITABLE = "/sys/hacnn_tf_figures"  # sysfs refuses new folders even to root (EPERM)
# An internal error: a subcommand whose run() has a bug.
BROKEN = (
    "import sys, hacnn_tf.cli.configs as configs, hacnn_tf.cli as cli\n"
    "configs.run = lambda args: {}['no such key']\n"
    "sys.exit(cli.main(['configs']))\n"
)


def cases(tmp: pathlib.Path) -> dict[str, tuple[list[str], dict, pathlib.Path]]:
    """name -> (command, extra environment, working folder)."""
    (tmp / "broken.keras").write_bytes(b"not a zip archive")
    (tmp / "bad.yaml").write_text("train: {epochs: [1, 2\n")
    log = tmp / "training_log.csv"
    log.write_text("epoch,loss,learning_rate\n1,2.0,0.01\n2,1.0,0.001\n")
    cmc = write_cmc_csv({"a": np.linspace(0.5, 1, 30)}, tmp / "eval_cmc.csv")
    (tmp / "not_a_log.csv").write_text("a,b\n1,2\n")
    exported = tmp / "exported" / "tflite-fp32"
    exported.mkdir(parents=True)
    (exported / "hacnn.tflite").write_bytes(b"TFL3 as exported")
    write_manifest(exported, "tflite", "fp32", {}, {}, "hacnn.tflite")
    (exported / "hacnn.tflite").write_bytes(b"TFL3 changed since")
    return {
        "demo: unknown config field": (
            [*HACNN_TF, "demo", "--workdir", str(tmp / "demo"), "--set", "train.epoch=3"],
            {},
            tmp,
        ),
        "fit: unknown config field": (
            [*HACNN_TF, "fit", "market1501_paper_softmax", "--set", "train.epoch=3"],
            {},
            tmp,
        ),
        "fit: a value out of range": ([*HACNN_TF, "fit", "demo_synthetic", "--set", "train.batch_size=0"], {}, tmp),
        "fit: unknown config": ([*HACNN_TF, "fit", "no_such_config"], {}, tmp),
        "fit: a config file that is not YAML": ([*HACNN_TF, "fit", str(tmp / "bad.yaml")], {}, tmp),
        "fit: a missing data root": (
            [*HACNN_TF, "fit", "demo_synthetic", "--set", f"data.root={tmp / 'nowhere'}"],
            {},
            tmp,
        ),
        "fit as a module: same contract": (
            [sys.executable, "-m", "training.fit", "demo_synthetic", "--set", "train.epoch=3"],
            {},
            REPO,
        ),
        "evaluate: a missing checkpoint": (
            [*HACNN_TF, "evaluate", str(tmp / "missing.keras"), "market1501", str(tmp)],
            {},
            tmp,
        ),
        "evaluate: a corrupt checkpoint": (
            [*HACNN_TF, "evaluate", str(tmp / "broken.keras"), "market1501", str(tmp)],
            {},
            tmp,
        ),
        "export: a missing checkpoint": ([*HACNN_TF, "export", str(tmp / "missing.keras"), str(tmp / "out")], {}, tmp),
        "convert: a missing checkpoint": (
            [*HACNN_TF, "convert", str(tmp / "missing.pth"), str(tmp / "m.keras")],
            {},
            tmp,
        ),
        "visualize: a missing log": ([*HACNN_TF, "visualize", "curves", "--log", str(tmp / "missing.csv")], {}, tmp),
        "visualize: a file that is no log": (
            [*HACNN_TF, "visualize", "curves", "--log", str(tmp / "not_a_log.csv"), "--output-dir", str(tmp / "nolog")],
            {},
            tmp,
        ),
        "visualize: an unwritable output folder": (
            [*HACNN_TF, "visualize", "curves", "--log", str(log), "--output-dir", UNWRITABLE],
            {},
            tmp,
        ),
        "visualize: a corrupt checkpoint": (
            [*HACNN_TF, "visualize", "ranks", str(tmp / "broken.keras"), "market1501", str(tmp)],
            {},
            tmp,
        ),
        "configs: unknown config": ([*HACNN_TF, "configs", "no_such_config"], {}, tmp),
        "verify: a changed file": ([*HACNN_TF, "verify", str(tmp / "exported")], {}, tmp),
        "bench: outside a source checkout": ([*HACNN_TF, "bench"], {}, tmp),
        "--debug adds the traceback": ([*HACNN_TF, "configs", "no_such_config", "--debug"], {}, tmp),
        "HACNN_TF_DEBUG=1 adds the traceback": ([*HACNN_TF, "configs", "no_such_config"], {"HACNN_TF_DEBUG": "1"}, tmp),
        "an internal error": ([sys.executable, "-c", BROKEN], {}, tmp),
        "visualize curves succeeds": (
            [
                *HACNN_TF,
                "visualize",
                "curves",
                "--log",
                str(log),
                "--cmc",
                str(cmc),
                "--output-dir",
                str(tmp / "figures"),
            ],
            {},
            tmp,
        ),
        # oneDNN on by request, so that TensorFlow prints its "oneDNN custom operations are on" line at import on
        # every CPU (by default it is on only where the CPU has AVX512-VNNI, BF16 or AMX).
        "configs succeeds": ([*HACNN_TF, "configs"], {"TF_ENABLE_ONEDNN_OPTS": "1"}, tmp),
        "--verbose shows TensorFlow's own lines": (
            [*HACNN_TF, "configs", "--verbose"],
            {"TF_ENABLE_ONEDNN_OPTS": "1"},
            tmp,
        ),
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """name -> (exit code, stdout, stderr, the case's folder), `CONCURRENT` at a time."""
    tmp = tmp_path_factory.mktemp("cli")
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("HACNN_TF_DEBUG", "PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")
    }

    def run(case):
        command, extra, cwd = case
        result = subprocess.run(
            command, cwd=cwd, env={**environment, **extra}, capture_output=True, text=True, timeout=900
        )
        return result.returncode, result.stdout, result.stderr, tmp

    todo = cases(tmp)
    with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:  # a few at a time: each holds TensorFlow
        return dict(zip(todo, pool.map(run, todo.values())))


# name -> (subcommand, what the one error line must name: a string or several)
USER_ERRORS = {
    "demo: unknown config field": ("demo", "Unknown config field 'train.epoch'"),
    "fit: unknown config field": ("fit", "Unknown config field 'train.epoch'"),
    "fit: a value out of range": ("fit", "train.batch_size must be a positive integer; got 0"),
    "fit: unknown config": ("fit", "'no_such_config' is neither a file nor a packaged config"),
    "fit: a config file that is not YAML": ("fit", "bad.yaml: not a valid YAML file"),
    "fit: a missing data root": ("fit", "nowhere does not exist"),
    "fit as a module: same contract": ("fit", "Unknown config field 'train.epoch'"),
    "evaluate: a missing checkpoint": ("evaluate", "missing.keras: no such model file or folder"),
    "evaluate: a corrupt checkpoint": ("evaluate", "broken.keras is not a .keras file"),
    "export: a missing checkpoint": ("export", "missing.keras"),
    "convert: a missing checkpoint": ("convert", "missing.pth"),
    "visualize: a missing log": ("visualize", "--log: "),
    "visualize: a file that is no log": ("visualize", "not_a_log.csv: the training log has no 'epoch' column"),
    "visualize: an unwritable output folder": (
        "visualize",
        (f"error: {UNWRITABLE}: ", "(free space or fix the permissions there, or choose another output folder)"),
    ),
    "visualize: a corrupt checkpoint": ("visualize", "broken.keras is not a .keras file"),
    "configs: unknown config": ("configs", "'no_such_config' is neither a file nor a packaged config"),
    "verify: a changed file": ("verify", "tflite-fp32/hacnn.tflite: changed since the export"),
    "bench: outside a source checkout": ("bench", "pip install -e '.[bench]'"),
}


@pytest.mark.parametrize("name", list(USER_ERRORS))
def test_a_user_error_is_one_line_without_a_traceback(results, name):
    code, stdout, stderr, _ = results[name]
    subcommand, named = USER_ERRORS[name]
    assert code != 0 and "Traceback" not in stderr, stderr[-3000:]
    if subcommand == "export":  # its refusals are the export command's own `export: ...` lines for now
        assert named in stderr.strip().splitlines()[-1], stderr[-3000:]
        return
    assert code == 2, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(f"hacnn-tf {subcommand}: error: "), stderr[-3000:]
    assert all(part in errors[0] for part in ((named,) if isinstance(named, str) else named)), errors[0]
    assert errors[0] == stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("name", ["--debug adds the traceback", "HACNN_TF_DEBUG=1 adds the traceback"])
def test_debug_adds_the_traceback(results, name):
    code, _, stderr, _ = results[name]
    assert code == 2 and "Traceback (most recent call last)" in stderr and "InputFileError" in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith("hacnn-tf configs: error: Config 'no_such_config'")


def test_an_internal_error_keeps_its_traceback(results):
    code, _, stderr, _ = results["an internal error"]
    assert code == 1 and "Traceback (most recent call last)" in stderr, stderr
    assert stderr.strip().splitlines()[-1] == "KeyError: 'no such key'" and ": error: " not in stderr


def test_success_exits_zero(results):
    code, stdout, stderr, tmp = results["visualize curves succeeds"]
    assert code == 0, stderr[-3000:]
    figures = tmp / "figures"
    assert stdout.splitlines() == [f"written {figures / 'training_curves.png'}", f"written {figures / 'cmc.png'}"]
    assert all((figures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in ("training_curves.png", "cmc.png"))
    code, stdout, stderr, _ = results["configs succeeds"]
    assert code == 0 and "market1501_paper_softmax" in stdout.split(), stderr[-3000:]
    assert "oneDNN" not in stderr and "absl" not in stderr, stderr  # TensorFlow's start-up notices stay quiet


def test_verbose_shows_the_native_log_lines(results):
    code, stdout, stderr, _ = results["--verbose shows TensorFlow's own lines"]
    assert code == 0 and "market1501_paper_softmax" in stdout.split(), stderr[-3000:]
    assert "oneDNN custom operations are on" in stderr, stderr
