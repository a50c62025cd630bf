"""The package as a user gets it: a wheel installed outside the checkout, its `hacnn-tf` command and its packaged
configs, run from an empty folder."""

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed with `pip --target` into a fresh folder (its dependencies are
    this environment's); returns (target, environment that puts it first and nothing of the checkout)."""
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("hacnn_tf-*.whl")
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "PATH": f"{target / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    return wheel, target, env


def run(command, env, cwd):
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


def test_wheel_holds_the_configs_and_the_command(installed):
    wheel, target, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "hacnn_tf/configs/market1501_paper_softmax.yaml" in names
    assert "hacnn_tf/configs/recipes/paper.yaml" in names
    assert not [n for n in names if n.startswith(("training/", "tests/", "export/"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "hacnn-tf = hacnn_tf.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert (target / "bin" / "hacnn-tf").exists()


def test_command_help_and_configs_from_an_empty_folder(installed, tmp_path):
    _, target, env = installed
    result = run(["hacnn-tf", "--help"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("demo", "fit", "evaluate", "export", "convert", "visualize", "configs", "bench"):
        assert command in result.stdout
    # TensorFlow's start-up notices do not reach the terminal.
    assert "oneDNN" not in result.stderr and "cpu_feature_guard" not in result.stderr and "absl" not in result.stderr
    where = run([sys.executable, "-c", "import hacnn_tf; print(hacnn_tf.__file__)"], env, tmp_path)
    assert where.stdout.strip().startswith(str(target)), where.stdout  # the installed copy, not the checkout
    listed = run(["hacnn-tf", "configs"], env, tmp_path)
    assert listed.returncode == 0 and "market1501_paper_softmax" in listed.stdout.split()
    shown = run(["hacnn-tf", "configs", "market1501_paper_softmax"], env, tmp_path)
    assert "learning_rate" in shown.stdout and "name: market1501" in shown.stdout
    for sub in ("fit", "evaluate", "export", "visualize"):
        assert run(["hacnn-tf", sub, "--help"], env, tmp_path).returncode == 0


def test_one_step_fit_with_a_packaged_config_from_an_empty_folder(installed, tmp_path):
    _, _, env = installed
    data = run(
        [
            sys.executable,
            "-m",
            "hacnn_tf.data.synthetic",
            "--root",
            "data",
            "--num-train-ids",
            "4",
            "--num-test-ids",
            "3",
            "--num-cameras",
            "2",
            "--images-per-id-per-camera",
            "2",
            "2",
        ],
        env,
        tmp_path,
    )
    assert data.returncode == 0, data.stderr
    overrides = [
        "data.root=data",
        "train.epochs=1",
        "train.batch_size=16",
        "model.nchannels=[16,32,48]",
        "model.feat_dim=32",
        "model.input_size=[64,32]",
        "output.dir=run",
    ]
    result = run(
        ["hacnn-tf", "fit", "demo_synthetic", *(arg for o in overrides for arg in ("--set", o))], env, tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "last.keras").is_file()
    log = (tmp_path / "run" / "training_log.csv").read_text().splitlines()
    assert len(log) == 2 and log[0].startswith("epoch")  # one epoch of one step (16 images, batch 16)
