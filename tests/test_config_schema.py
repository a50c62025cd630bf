"""The typed training config: files, `base:` includes and overrides produce a `Config`; each constraint is stated
once (the model checks its arguments with the same `ModelConfig.validate`) and matches what the layers accept."""

import dataclasses
import re

import pytest
import yaml

from hacnn_tf.config import Config, ModelConfig, load_config
from hacnn_tf.configs import configs_dir, list_configs
from hacnn_tf.errors import ConfigError, InputFileError, UserError
from hacnn_tf.layers.attention import ChannelAttention
from hacnn_tf.layers.inception import InceptionA, InceptionB
from hacnn_tf.model import HACNN


def layers_accept(channels: int, reduction: int) -> bool:
    """Whether the blocks of one level build with `channels` (Inception-A/B and the channel attention)."""
    try:
        InceptionA(channels).build((1, 8, 8, 16))
        InceptionB(channels).build((1, 8, 8, 16))
        ChannelAttention(reduction).build((1, 4, 4, channels))
    except ValueError:
        return False
    return True


def config_accepts(channels: int, reduction: int) -> bool:
    try:
        ModelConfig(nchannels=[channels] * 3, reduction=reduction).validate()
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("reduction", [16, 6, 8, 3])
def test_the_channel_constraint_is_exactly_what_the_layers_accept(reduction):
    for channels in range(1, 50):
        assert config_accepts(channels, reduction) == layers_accept(channels, reduction), (channels, reduction)


def test_the_model_refuses_with_the_config_s_message():
    for bad in (
        {"nchannels": (24, 48, 72)},
        {"input_size": (150, 64)},
        {"num_regions": 0},
        {"local_size": (0, 4)},
        {"reduction": 6, "nchannels": (16, 32, 48)},
    ):
        with pytest.raises(ConfigError) as from_model:
            HACNN(3, **bad)
        with pytest.raises(ConfigError) as from_config:
            load_config(
                None,
                [f"model.{name}={list(value) if isinstance(value, tuple) else value}" for name, value in bad.items()],
            )
        assert str(from_model.value) == str(from_config.value)
    assert re.fullmatch(
        r"model.nchannels must be three channel counts, positive multiples of 12 \(divisible by 4 "
        r"for the Inception streams and by model.reduction = 6 for the channel attention\); got "
        r"\[16, 32, 48\]",
        str(from_config.value),
    )
    model = HACNN(None, nchannels=(12, 24, 36), reduction=6, feat_dim=8, input_size=(64, 32))  # lcm(4, 6) = 12
    assert model.embedding_dim == 16


def test_files_bases_and_overrides_build_a_typed_config_that_round_trips(tmp_path):
    (tmp_path / "recipe.yaml").write_text("train:\n  epochs: 7\n  batch_size: 16\noptimizer:\n  name: sgd\n")
    (tmp_path / "run.yaml").write_text(
        "base: recipe.yaml\ntrain:\n  batch_size: 8\nmodel:\n  nchannels: [32, 64, 96]\n"
    )
    config = load_config(tmp_path / "run.yaml", ["optimizer.learning_rate=5e-4", "data.options.cuhk03_labeled=true"])
    assert isinstance(config, Config)
    assert (config.train.epochs, config.train.batch_size, config.optimizer.name) == (7, 8, "sgd")
    assert config.optimizer.learning_rate == 5e-4 and config.model.nchannels == (32, 64, 96)
    assert config.data.options == {"cuhk03_labeled": True} and config.loss == Config().loss  # defaults kept
    assert Config.from_dict(config.to_dict()) == config
    assert Config.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config
    assert load_config(None) == Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.epochs = 3


@pytest.mark.parametrize(
    "source, message",
    [
        (["train.epoch=3"], r"^Unknown config field 'train.epoch'; did you mean 'train.epochs'\? expected one of "),
        (["trian.epochs=3"], r"^Unknown config field 'trian'; did you mean 'train'\?"),
        (["optimizer.lerning_rate=0.1"], r"did you mean 'optimizer.learning_rate'\?"),
        (["train.epochs"], r"^Override 'train.epochs' must look like section.field=value$"),
        (["train.epochs=[1"], r"^Override 'train.epochs=\[1': the value is not valid YAML"),
        (["train=3"], r"^Override 'train=3' must look like section.field=value$"),
        (["model.nchannels=[128, 256]"], r"^model.nchannels must be three channel counts, positive multiples of 16"),
        ("train:\n  epochs: [1\n", r"bad.yaml: not a valid YAML file \(.*line 2"),
        ("- 1\n", r"bad.yaml: a config must be a mapping of sections; got list$"),
        ("train: 5\n", r"bad.yaml: Config section 'train' must be a mapping of fields; got 5$"),
    ],
)
def test_config_errors_are_one_line_naming_the_field_or_file(tmp_path, source, message):
    path = None
    if isinstance(source, str):
        path = tmp_path / "bad.yaml"
        path.write_text(source)
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path, [] if path else source)
    assert "\n" not in str(error.value) and isinstance(error.value, (UserError, ValueError))
    with pytest.raises(InputFileError, match="nothere.yaml"):
        load_config(tmp_path / "nothere.yaml")


def test_every_packaged_config_loads_and_shows_its_fields():
    for name in list_configs():
        config = load_config(configs_dir() / f"{name}.yaml")
        assert config.output.tensorboard is (name != "demo_synthetic")
        assert set(config.to_dict()) == {field.name for field in dataclasses.fields(Config)}
