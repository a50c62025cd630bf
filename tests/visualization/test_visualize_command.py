"""`training/visualize.py` (`hacnn-tf visualize`): the attention, ranks and curves commands end to end (exit 0)."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_MODEL
from PIL import Image

from hacnn_tf import HACNN
from hacnn_tf.visualization.curves import write_cmc_csv
from training.visualize import main

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY_SET = [f"--set=model.{key}={value}".replace(" ", "") for key, value in TINY_MODEL.items()]


def _size(path):
    with Image.open(path) as image:
        return image.size


def _root(dataset) -> str:
    return dataset.train["path"].iloc[0].rsplit("/", 2)[0]


def test_attention_command_untrained(tmp_path, capsys):
    images = []
    for i in range(2):
        path = tmp_path / f"person{i}.jpg"
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (100, 40, 3), np.uint8)).save(path)
        images.append(str(path))
    output = tmp_path / "figures" / "attention.png"
    assert (
        main(["attention", "--untrained", *TINY_SET, "--images", *images, "--output", str(output), "--dpi", "50"]) == 0
    )
    assert capsys.readouterr().out.splitlines() == [f"written {output}"]
    assert _size(output) == (round(4 * 1.2 * 50), round((2 * 1.2 * 2 + 0.3 + 0.3) * 50))  # titles, box legend


def test_module_runs_as_a_command():
    result = subprocess.run(
        [sys.executable, "-m", "training.visualize", "--help"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "attention" in result.stdout and "ranks" in result.stdout


def test_attention_and_ranks_commands_from_a_checkpoint(tmp_path, tiny_synthetic):
    checkpoint = tmp_path / "tiny.keras"
    HACNN(5, **TINY_MODEL).save(checkpoint)
    root = _root(tiny_synthetic)
    attention, ranks = tmp_path / "a.png", tmp_path / "r.png"
    assert (
        main(
            [
                "attention",
                "--checkpoint",
                str(checkpoint),
                "--dataset",
                "market1501",
                "--root",
                root,
                "--split",
                "gallery",
                "--num-images",
                "3",
                "--output",
                str(attention),
            ]
        )
        == 0
    )
    assert _size(attention) == (480, round((3 * 2.4 + 0.3 + 0.3) * 100))
    assert (
        main(
            [
                "ranks",
                str(checkpoint),
                "market1501",
                root,
                "--query-indices",
                "0",
                "2",
                "--top-k",
                "4",
                "--output",
                str(ranks),
                "--metric",
                "cosine",
                "--rerank",
            ]
        )
        == 0
    )
    assert _size(ranks) == (round(5 * 0.9 * 100), round(2 * (1.8 + 0.5) * 100))


def test_curves_command(tmp_path, capsys):
    log = tmp_path / "training_log.csv"
    log.write_text("epoch,loss,learning_rate\n0,2.0,0.01\n1,1.0,0.001\n")
    cmc = write_cmc_csv({"a": np.linspace(0.5, 1, 30)}, tmp_path / "eval_cmc.csv")
    assert main(["curves", "--log", str(log), "--cmc", str(cmc), "--output-dir", str(tmp_path / "out")]) == 0
    paths = [tmp_path / "out" / "training_curves.png", tmp_path / "out" / "cmc.png"]
    assert capsys.readouterr().out.splitlines() == [f"written {path}" for path in paths]
    assert [_size(p) for p in paths] == [(1500, 400), (720, 540)]
    with pytest.raises(SystemExit) as exit_info:
        main(["curves"])
    assert exit_info.value.code == 2
    assert "give --log (a training_log.csv) and/or --cmc" in capsys.readouterr().err


def test_attention_command_argument_errors(capsys):
    with pytest.raises(SystemExit):
        main(["attention", "--untrained"])  # no images
    with pytest.raises(SystemExit):
        main(["attention", "--checkpoint", "x.keras", "--untrained", "--images", "a.png"])
    with pytest.raises(SystemExit):
        main(["attention", "--untrained", "--dataset", "market1501", "--images", "a.png"])
    with pytest.raises(SystemExit):
        main(["attention", "--checkpoint", "x.keras", "--dataset", "market1501"])  # no --root
