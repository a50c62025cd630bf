"""Every example block of README.md, CONTRIBUTING.md and docs/*.md runs: ```` ```bash example ```` blocks in bash
(`-euo pipefail`), ```` ```python example ```` blocks in a fresh Python, each in its own temporary folder, and a
block fails the test with a non-zero exit.

The blocks use the paths that `hacnn-tf demo --workdir demo` writes (`demo/data`, `demo/train/best.keras`,
`demo/export/saved_model-fp32/hacnn/1`, ...) and never write into `demo/`. Each block's folder gets a `demo/` that
this module prepares once per session with the same commands at a small size (a small synthetic set, one epoch of
a small model, the SavedModel and fp32 TFLite exports, camera frames); the page's `hacnn-tf demo` block itself runs in
an empty
folder (`fresh`) and must write every `demo/` path that any block of the pages names. `$HACNN_TF_QUICK` holds the
small-model overrides the training blocks append (`--set train.epochs=1 ...`); it is empty for a user.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest
from markdown_blocks import ROOT, Block, blocks, example_blocks, pages

# The small HA-CNN of the tests (same graph, fewer channels, 64 x 32 input), trained for one epoch.
QUICK = "--set train.epochs=1 --set model.nchannels=[16,32,48] --set model.feat_dim=32 --set model.input_size=[64,32]"
# A `demo/...` path as the blocks write it: after a space, quote, `=`, `(` or `$PWD/`.
DEMO_PATH = re.compile(r"(?:(?<=[\s\"'=(,])|(?<=\$PWD/)|^)(demo/[\w./-]*[\w/])", re.M)
# Generous: the 2-core machine is often shared; a block that hangs is still stopped.
SLOW_SECONDS, QUICK_SECONDS = 2400, 1200


def environment() -> dict[str, str]:
    bin_dir = str(pathlib.Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HACNN_TF_QUICK": QUICK,
        "PYTHONPATH": str(ROOT),
        "MPLBACKEND": "Agg",
    }


def run(command: list[str], cwd: pathlib.Path, timeout: float, what: str) -> None:
    """Runs `command` in its own process group and fails the test on a non-zero exit or after `timeout` seconds,
    killing the whole group (a block's commands included) so that nothing outlives the test."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(
            f"{what} ran past {timeout} s\n--- stdout ---\n{stdout[-6000:]}\n--- stderr ---\n{stderr[-6000:]}",
            pytrace=False,
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # what the block left running in the background
        process.wait()
    if process.returncode != 0:
        pytest.fail(
            f"{what} exited with {process.returncode}\n--- stdout ---\n{stdout[-6000:]}"
            f"\n--- stderr ---\n{stderr[-6000:]}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def demo_workdir(tmp_path_factory) -> pathlib.Path:
    """A folder holding `demo/` as `hacnn-tf demo --workdir demo` lays it out, made by the same commands at a small
    size: the synthetic set (12 training and 8 test identities, 3 cameras) and camera frames of its world, the demo
    config trained one epoch with `$HACNN_TF_QUICK`, and `hacnn-tf export` of the SavedModel (with warm-up records)
    and the fp32 TFLite file."""
    folder = tmp_path_factory.mktemp("docs-demo")
    steps = [
        [
            sys.executable,
            "-m",
            "hacnn_tf.data.synthetic",
            "--root",
            "demo/data",
            "--num-train-ids",
            "12",
            "--num-test-ids",
            "8",
            "--num-cameras",
            "3",
            "--images-per-id-per-camera",
            "2",
            "2",
        ],
        [sys.executable, "-m", "hacnn_tf.data.synthetic_frames", "--root", "demo/frames", "--seed", "0"],
        [
            "hacnn-tf",
            "fit",
            "demo_synthetic",
            "--set",
            "data.root=demo/data",
            "--set",
            "output.dir=demo/train",
            *QUICK.split(),
        ],
        [
            "hacnn-tf",
            "export",
            "demo/train/best.keras",
            "demo/export",
            "--format",
            "saved_model",
            "tflite-fp32",
            "--warmup-images",
            "demo/data/query",
        ],
    ]
    for step in steps:
        run(step, folder, SLOW_SECONDS, " ".join(step))
    return folder / "demo"


def demo_paths() -> set[str]:
    """Every `demo/...` path that a block of the pages names (example or not)."""
    return {match.rstrip("/.") for page in pages() for block in blocks(page) for match in DEMO_PATH.findall(block.code)}


# How a block of each language runs: the interpreter's command line for a script file.
RUNNERS = {"bash": (["bash", "-euo", "pipefail"], ".sh"), "python": ([sys.executable], ".py")}


def params() -> list:
    return [
        pytest.param(block, id=block.name, marks=[pytest.mark.slow] if "slow" in block.words else [])
        for language in RUNNERS
        for block in example_blocks(language)
    ]


def prepare(block: Block, tmp_path: pathlib.Path, request) -> pathlib.Path:
    """The folder `block` runs in: the checkout (`checkout`), an empty folder (`fresh`), or a temporary folder with
    the prepared `demo/`."""
    if "checkout" in block.words:
        return ROOT
    if "fresh" not in block.words:
        (tmp_path / "demo").symlink_to(request.getfixturevalue("demo_workdir"), target_is_directory=True)
    return tmp_path


@pytest.mark.parametrize("block", params())
def test_example_block_runs(block: Block, tmp_path, request):
    folder = prepare(block, tmp_path, request)
    interpreter, suffix = RUNNERS[block.language]
    script = tmp_path / f"example{suffix}"
    script.write_text(block.code)
    timeout = SLOW_SECONDS if "slow" in block.words else QUICK_SECONDS
    run([*interpreter, str(script)], folder, timeout, f"the {block.language} block at {block.name}")
    if "fresh" in block.words:
        missing = sorted(path for path in demo_paths() if not (tmp_path / path).exists())
        assert missing == [], f"paths the pages use that {block.name} did not write"


def test_the_pages_have_examples_of_every_kind():
    """The blocks this module runs exist: a shell and a Python example, and one `fresh` run of the demo that checks
    the `demo/` paths (a renamed info word would otherwise leave nothing to run)."""
    shell = example_blocks("bash")
    assert shell and example_blocks("python")
    assert [block.name for block in shell if "fresh" in block.words and "hacnn-tf demo" in block.code]
    assert {"demo/data", "demo/train/best.keras"} <= demo_paths()


def test_a_failing_block_fails(tmp_path):
    """The runner reports a non-zero exit (here of the second command of a block) as a failure."""
    with pytest.raises(pytest.fail.Exception, match="exited with 3"):
        run(["bash", "-euo", "pipefail", "-c", "true\nexit 3\necho never"], tmp_path, 60, "a block")


def test_a_block_past_its_time_fails_and_leaves_no_process(tmp_path):
    marker = tmp_path / "pid"
    with pytest.raises(pytest.fail.Exception, match="ran past 3 s"):
        run(["bash", "-c", f"sleep 300 & echo $! > {marker}; wait"], tmp_path, 3, "a block")
    pid = int(marker.read_text())
    for _ in range(50):  # killed at once; its reaping by init may take a moment
        if not running(pid):
            break
        time.sleep(0.1)
    assert not running(pid)


def running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (Linux /proc)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
