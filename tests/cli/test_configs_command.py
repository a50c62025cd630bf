"""`hacnn-tf configs`: the packaged configs, one line each, and one config printed merged."""

import yaml

from hacnn_tf.cli import main
from hacnn_tf.config import load_config
from hacnn_tf.configs import list_configs


def test_the_list_has_a_line_per_config_with_its_recipe(capsys):
    assert main(["configs"]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.startswith("Packaged configs (`hacnn-tf configs NAME` prints one")
    assert [line.split()[0] for line in lines] == list_configs()
    described = {line.split()[0]: " ".join(line.split()[1:]) for line in lines}
    assert described["market1501_paper_softmax"] == (
        "HA-CNN on market1501: paper recipe, softmax loss (adam lr 0.0005, 150 epochs, batch 32, 160x64)"
    )
    assert described["msmt17_reference_softmax_triplet"] == (
        "HA-CNN on msmt17: reference recipe, softmax + triplet loss (sgd lr 0.03, 300 epochs, batch 32, 160x64)"
    )


def test_one_config_is_printed_with_its_bases_merged(capsys):
    assert main(["configs", "market1501_reference_softmax"]) == 0
    path, text = capsys.readouterr().out.split("\n", 1)
    assert path.startswith("# ") and path.endswith("market1501_reference_softmax.yaml")
    assert yaml.safe_load(text) == load_config(path[2:]).to_dict()
