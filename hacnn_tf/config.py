"""The training configuration as typed sections, read from YAML/JSON files, `base:` includes and `--set` overrides.

`Config` holds one frozen dataclass per section (`data`, `model`, `loss`, `train`, `optimizer`, `schedule`, `eval`,
`output`, `distribute`); each section's `validate()` states every constraint on its fields once, and
`Config.validate()` adds the ones between sections. `HACNN` checks its arguments with `ModelConfig.validate()` too,
so the config and the model refuse the same values with the same message. A failed check raises
`hacnn_tf.errors.ConfigError`, one line naming the field, what it must be and the value it has.

Example:
    >>> config = load_config("market1501_paper_softmax.yaml", ["data.root=/data/reid", "train.epochs=5"])
    >>> config.train.epochs, config.model.input_size
    (5, (160, 64))
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import os
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from hacnn_tf.errors import ConfigError, InputFileError

# Inception-A/B split a level's channels into four streams (`filters / 4` each).
INCEPTION_STREAMS = 4
# The input is halved five times (stem, three Inception-B, the spatial attention's stride-2 convolution).
INPUT_SIZE_MULTIPLE = 32
NUM_LEVELS = 3
OPTIMIZERS = ("adam", "sgd")
METRICS = ("euclidean", "cosine")
STRATEGIES = ("default", "mirrored", "multi_worker")
# The `communication` (all-reduce implementation) each strategy accepts.
COMMUNICATION: dict[str, tuple[str, ...]] = {
    "default": ("auto",),
    "mirrored": ("auto", "nccl", "hierarchical_copy", "reduce_to_one"),
    "multi_worker": ("auto", "ring", "nccl"),
}


# === Checks: each raises ConfigError "<field> must be <what>; got <value>" ===


def _shown(value: Any) -> str:
    """`value` as the user wrote it: sequences (tuples once frozen) as YAML's lists."""
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def _fail(name: str, what: str, value: Any) -> None:
    raise ConfigError(f"{name} must be {what}; got {_shown(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(name, "true or false", value)


def _positive_int(name: str, value: Any) -> None:
    if not (_is_int(value) and value > 0):
        _fail(name, "a positive integer", value)


def _non_negative_int(name: str, value: Any, what: str = "an integer >= 0") -> None:
    if not (_is_int(value) and value >= 0):
        _fail(name, what, value)


def _positive_number(name: str, value: Any) -> None:
    if not (_is_number(value) and value > 0):
        _fail(name, "a positive number", value)


def _non_negative(name: str, value: Any) -> None:
    if not (_is_number(value) and value >= 0):
        _fail(name, "a number >= 0", value)


def _fraction(name: str, value: Any) -> None:
    if not (_is_number(value) and 0 <= value < 1):
        _fail(name, "a number in [0, 1)", value)


def _path(name: str, value: Any, what: str = "a non-empty path") -> None:
    if not (isinstance(value, (str, os.PathLike)) and str(value) != ""):
        _fail(name, what, value)


def _one_of(name: str, value: Any, choices: Sequence[str], what: str | None = None) -> None:
    if value not in choices:
        _fail(name, what or f"one of {list(choices)}", value)


def _freeze(section: Any, *names: str) -> None:
    """Turns the list values of the `names` fields of a frozen `section` into tuples (YAML gives lists), so that a
    config read from a file equals one built in Python and cannot change."""
    for name in names:
        if isinstance(getattr(section, name), list):
            object.__setattr__(section, name, tuple(getattr(section, name)))


def _milestone(value: Any) -> bool:
    return _is_number(value) and (0 < value < 1 or (value >= 1 and float(value).is_integer()))


# === Sections ===


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data set to train and evaluate on.

    Args:
        name: a reader of `hacnn_tf.data.datasets` (`market1501`, `dukemtmcreid`, `cuhk03`, `msmt17`, `folder`).
        root: the folder holding it; `fit` needs it unless it is handed the loaded data set.
        options: keyword arguments of the reader, e.g. `{cuhk03_labeled: true}`.
    """

    name: str = "market1501"
    root: str | os.PathLike | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        if not (isinstance(self.name, str) and self.name):
            _fail("data.name", "a data set name such as 'market1501'", self.name)
        if self.root is not None:
            _path("data.root", self.root, "the data set's folder, or null")
        if not isinstance(self.options, Mapping):
            _fail("data.options", "a mapping of data set reader options", self.options)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The HA-CNN architecture (the keyword arguments of `hacnn_tf.model.HACNN` besides `num_classes`).

    Args:
        input_size: `[height, width]`, positive multiples of 32 (five halvings); the paper's is 160 x 64.
        learn_region: build the local branch (hard regional attention, §3.2).
        num_regions: hard-attention regions `T` per level.
        feat_dim: size of each branch's feature.
        nchannels: channels of the three levels; each divisible by 4 (Inception's four streams) and by
            `reduction` (the channel attention's bottleneck).
        align_corners: the regional sampler's `grid_sample` convention (False: PyTorch >= 1.3).
        reduction: the channel attention's reduction ratio (§3.1).
        local_size: level-1 local crop `[height, width]`; null: the paper's 24 x 28 scaled to `input_size`.
    """

    input_size: Sequence[int] = (160, 64)
    learn_region: bool = True
    num_regions: int = 4
    feat_dim: int = 512
    nchannels: Sequence[int] = (128, 256, 384)
    align_corners: bool = False
    reduction: int = 16
    local_size: Sequence[int] | None = None

    def __post_init__(self) -> None:
        _freeze(self, "input_size", "nchannels", "local_size")

    @property
    def channel_multiple(self) -> int:
        """What every level's channel count must be a multiple of: 4 and `reduction`'s least common multiple."""
        return math.lcm(INCEPTION_STREAMS, self.reduction)

    def validate(self) -> None:
        if not (
            _is_sequence(self.input_size)
            and len(self.input_size) == 2
            and all(_is_int(n) and n > 0 and n % INPUT_SIZE_MULTIPLE == 0 for n in self.input_size)
        ):
            _fail("model.input_size", f"[height, width], positive multiples of {INPUT_SIZE_MULTIPLE}", self.input_size)
        _boolean("model.learn_region", self.learn_region)
        _positive_int("model.num_regions", self.num_regions)
        _positive_int("model.feat_dim", self.feat_dim)
        _positive_int("model.reduction", self.reduction)
        multiple = self.channel_multiple
        if not (
            _is_sequence(self.nchannels)
            and len(self.nchannels) == NUM_LEVELS
            and all(_is_int(c) and c > 0 and c % multiple == 0 for c in self.nchannels)
        ):
            _fail(
                "model.nchannels",
                f"three channel counts, positive multiples of {multiple} (divisible by "
                f"{INCEPTION_STREAMS} for the Inception streams and by model.reduction = "
                f"{self.reduction} for the channel attention)",
                self.nchannels,
            )
        _boolean("model.align_corners", self.align_corners)
        if self.local_size is not None and not (
            _is_sequence(self.local_size)
            and len(self.local_size) == 2
            and all(_is_int(n) and n > 0 for n in self.local_size)
        ):
            _fail(
                "model.local_size",
                "[height, width] of positive integers, or null (the paper's 24 x 28 scaled to model.input_size)",
                self.local_size,
            )


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """The training losses (`hacnn_tf.losses.hacnn_losses`): label-smoothed cross-entropy and batch-hard triplet."""

    softmax: bool = True
    triplet: bool = False
    weight_x: float = 1.0
    weight_t: float = 1.0
    label_smoothing: float = 0.1
    margin: float = 0.3

    def validate(self) -> None:
        _boolean("loss.softmax", self.softmax)
        _boolean("loss.triplet", self.triplet)
        _non_negative("loss.weight_x", self.weight_x)
        _non_negative("loss.weight_t", self.weight_t)
        _fraction("loss.label_smoothing", self.label_smoothing)
        _non_negative("loss.margin", self.margin)
        if not (self.softmax or self.triplet):
            raise ConfigError("loss.softmax and loss.triplet are both false: at least one loss must be on")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Epochs, batches and augmentation. `batch_size` is the global batch; `num_instances` K gives P x K batches
    (K images of each of `batch_size / K` identities), null uniform ones."""

    epochs: int = 150
    batch_size: int = 32
    num_instances: int | None = None
    flip: bool = True
    translate: bool = True
    random_erasing: bool = False
    seed: int = 0
    jit_compile: bool = False

    def validate(self) -> None:
        _positive_int("train.epochs", self.epochs)
        _positive_int("train.batch_size", self.batch_size)
        if self.num_instances is not None and not (_is_int(self.num_instances) and self.num_instances >= 2):
            _fail(
                "train.num_instances",
                "null (uniform batches) or an integer >= 2 (K images per identity in P x K batches)",
                self.num_instances,
            )
        for name in ("flip", "translate", "random_erasing"):
            _boolean(f"train.{name}", getattr(self, name))
        _non_negative_int("train.seed", self.seed)
        _boolean("train.jit_compile", self.jit_compile)
        if self.num_instances is not None and self.batch_size % self.num_instances:
            raise ConfigError(
                f"train.batch_size must be a multiple of train.num_instances ({self.num_instances}), "
                f"so that a P x K batch holds whole identities; got {self.batch_size}"
            )


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Adam (the paper: 5e-4) or SGD. `weight_decay` is Keras' decoupled decay, not torch's coupled L2."""

    name: str = "adam"
    learning_rate: float = 5e-4
    weight_decay: float = 5e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    momentum: float = 0.9
    nesterov: bool = False

    def validate(self) -> None:
        if not (isinstance(self.name, str) and self.name.lower() in OPTIMIZERS):
            _fail("optimizer.name", " or ".join(map(repr, OPTIMIZERS)), self.name)
        _positive_number("optimizer.learning_rate", self.learning_rate)
        _non_negative("optimizer.weight_decay", self.weight_decay)
        for name in ("beta_1", "beta_2", "momentum"):
            _fraction(f"optimizer.{name}", getattr(self, name))
        _boolean("optimizer.nesterov", self.nesterov)


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """Step decay by `gamma` at each milestone (torchreid's multistep): fractions of the epochs (0 < m < 1) or epoch
    numbers; no milestones keep the rate constant."""

    milestones: Sequence[float] = ()
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _freeze(self, "milestones")

    def validate(self) -> None:
        milestones = self.milestones
        if not (
            _is_sequence(milestones)
            and all(map(_milestone, milestones))
            and all(a < b for a, b in zip(milestones, milestones[1:]))
        ):
            _fail(
                "schedule.milestones",
                "an increasing list of fractions of the epochs (0 < m < 1) or epoch numbers (integers)",
                milestones,
            )
        _positive_number("schedule.gamma", self.gamma)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Re-id evaluation on query/gallery during training: every `every` epochs (0: after the last only)."""

    every: int = 10
    metric: str = "euclidean"
    ranks: Sequence[int] = (1, 5, 10, 20)
    batch_size: int = 64

    def __post_init__(self) -> None:
        _freeze(self, "ranks")

    def validate(self) -> None:
        _non_negative_int("eval.every", self.every, "an integer >= 0 (0: after the last epoch only)")
        _one_of("eval.metric", self.metric, METRICS, " or ".join(map(repr, METRICS)))
        if not (_is_sequence(self.ranks) and self.ranks and all(_is_int(k) and k > 0 for k in self.ranks)):
            _fail("eval.ranks", "a non-empty list of positive integers", self.ranks)
        _positive_int("eval.batch_size", self.batch_size)


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """The run folder (`hacnn_tf.run_folder`) and whether TensorBoard logs go into `<dir>/tensorboard`."""

    dir: str | os.PathLike = "runs/hacnn"
    tensorboard: bool = True

    def validate(self) -> None:
        _path("output.dir", self.dir)
        _boolean("output.tensorboard", self.tensorboard)


@dataclasses.dataclass(frozen=True)
class DistributeConfig:
    """The `tf.distribute` strategy (`hacnn_tf.distribute`): `default`, `mirrored` (the GPUs of one machine, or
    `devices`) or `multi_worker` (several machines, each with its `TF_CONFIG`)."""

    strategy: str = "default"
    devices: Sequence[str] | None = None
    communication: str = "auto"
    sync_batch_norm: bool = True
    timeout_seconds: float | None = None

    def __post_init__(self) -> None:
        _freeze(self, "devices")

    def validate(self) -> None:
        strategy, devices, timeout = self.strategy, self.devices, self.timeout_seconds
        _one_of("distribute.strategy", strategy, STRATEGIES)
        if devices is not None:
            if strategy != "mirrored":
                raise ConfigError(
                    f"distribute.devices applies to the 'mirrored' strategy only (multi_worker uses "
                    f"every visible GPU of each worker: restrict them with CUDA_VISIBLE_DEVICES); got "
                    f"{_shown(devices)} with strategy {strategy!r}"
                )
            if not (_is_sequence(devices) and devices and all(isinstance(d, str) for d in devices)):
                _fail(
                    "distribute.devices",
                    "a non-empty list of device names such as ['/gpu:0', '/gpu:1'], or null for all GPUs",
                    devices,
                )
        if self.communication not in COMMUNICATION[strategy]:
            raise ConfigError(
                f"distribute.communication must be one of {list(COMMUNICATION[strategy])} with "
                f"strategy {strategy!r}; got {self.communication!r}"
            )
        _boolean("distribute.sync_batch_norm", self.sync_batch_norm)
        if timeout is not None:
            if not (_is_number(timeout) and timeout > 0):
                _fail("distribute.timeout_seconds", "a positive number of seconds or null", timeout)
            if strategy != "multi_worker":
                raise ConfigError(
                    f"distribute.timeout_seconds applies to the 'multi_worker' strategy only; got "
                    f"{timeout!r} with strategy {strategy!r}"
                )


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "train": TrainConfig,
    "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig,
    "eval": EvalConfig,
    "output": OutputConfig,
    "distribute": DistributeConfig,
}
# Fields whose value is a free mapping, merged whole rather than field by field.
_FREE_MAPPINGS = {("data", "options")}


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole training configuration: one typed section per field. Build it with `load_config` (files and
    overrides) or `Config.from_dict`, then `validate()` it (`load_config` and `fit` do)."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)
    distribute: DistributeConfig = dataclasses.field(default_factory=DistributeConfig)

    def validate(self) -> Config:
        """Raises `ConfigError` for a config `fit` cannot train from start to end: a field of the wrong type or out
        of range (each section's `validate`), or fields of different sections that do not go together (triplet
        loss without P x K batches, or with fewer than two identities in a batch). Returns the config."""
        for name in _SECTIONS:
            getattr(self, name).validate()
        batch_size, instances = self.train.batch_size, self.train.num_instances
        if self.loss.triplet and instances is None:
            raise ConfigError(
                "loss.triplet needs P x K batches (K >= 2 images of each identity): set "
                "train.num_instances, e.g. 4; got null"
            )
        if self.loss.triplet and batch_size // instances < 2:
            raise ConfigError(
                f"train.batch_size must hold at least 2 identities of train.num_instances "
                f"({instances}) images, or the triplet loss has no negatives; got {batch_size}"
            )
        return self

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The config as plain YAML/JSON values (sequences as lists, paths as strings): what `config.yaml` and a
        backup's state hold, and what `from_dict` reads back."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    @classmethod
    def from_dict(cls, sections: Mapping[str, Any]) -> Config:
        """The config of `sections` (`{section: {field: value}}`, missing fields at their defaults); `ConfigError`
        for an unknown section or field (naming the nearest known ones). Values are not checked: `validate` that."""
        merged = merge_sections(cls().to_dict(), sections)
        return cls(**{name: section(**merged[name]) for name, section in _SECTIONS.items()})


def _unknown(where: str, known: Sequence[str]) -> ConfigError:
    leaf = where.rsplit(".", 1)[-1]
    prefix = where[: -len(leaf)]
    nearest = difflib.get_close_matches(leaf, known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(prefix + n) for n in nearest)}? " if nearest else ""
    return ConfigError(f"Unknown config field {where!r}; {hint}expected one of {sorted(known)}")


def merge_sections(base: dict, update: Mapping, path: str = "") -> dict:
    """`base` (a `to_dict()`, updated in place and returned) with the fields of `update` replacing its own;
    `ConfigError` for a name `base` does not have or a section that is not a mapping."""
    if not isinstance(update, Mapping):
        raise ConfigError(f"Config section {path.rstrip('.')!r} must be a mapping of fields; got {update!r}")
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in base:
            raise _unknown(where, list(base))
        if isinstance(base[key], dict) and tuple(where.split(".")) not in _FREE_MAPPINGS:
            merge_sections(base[key], value, f"{where}.")
        else:
            base[key] = value
    return base


# === Loading ===


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `5e-4` and `1.0e3` as numbers as YAML 1.2 does (PyYAML's YAML 1.1 rules want a
    dot and a signed exponent, and leave `5e-4` a string)."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def _parse(path: pathlib.Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle) if path.suffix == ".json" else yaml.load(handle, Loader=_ConfigLoader)
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as error:
        detail = " ".join(str(error).split())
        raise ConfigError(
            f"{path}: not a valid {'JSON' if path.suffix == '.json' else 'YAML'} file ({detail})"
        ) from None


def _read_config_file(path: pathlib.Path, sections: dict, chain: tuple[pathlib.Path, ...] = ()) -> None:
    """Merges `path` into `sections`, after the files its `base` field names (relative to it, applied in order)."""
    if not path.is_file():
        raise InputFileError(f"Config file not found: {path}")
    if path.resolve() in chain:
        raise ConfigError(f"Config files include each other: {' -> '.join(map(str, (*chain, path)))}")
    loaded = _parse(path)
    if not isinstance(loaded, Mapping):
        raise ConfigError(f"{path}: a config must be a mapping of sections; got {type(loaded).__name__}")
    loaded = dict(loaded)
    bases = loaded.pop("base", [])
    for base in [bases] if isinstance(bases, str) else bases:
        _read_config_file(path.parent / base, sections, (*chain, path.resolve()))
    try:
        merge_sections(sections, loaded)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def parse_override(item: str) -> dict[str, Any]:
    """`section.field=value` (a YAML value; `data.options.key=value` reaches into a mapping) as
    `{section: {field: value}}`."""
    key, separator, raw = item.partition("=")
    if not separator or "." not in key or "" in key.split("."):
        raise ConfigError(f"Override {item!r} must look like section.field=value")
    try:
        value = yaml.load(raw, Loader=_ConfigLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"Override {item!r}: the value is not valid YAML ({' '.join(str(error).split())})") from None
    nested: dict[str, Any] = {}
    cursor = nested
    *parents, leaf = key.split(".")
    for part in parents:
        cursor = cursor.setdefault(part, {})
    cursor[leaf] = value
    return nested


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> Config:
    """The default `Config`, updated by a YAML/JSON file and `section.field=value` overrides (YAML values, applied
    in order), validated.

    A file may start from others: `base: ../recipes/paper.yaml` (or a list), paths relative to the file. Raises
    `ConfigError` (unknown field, bad value, malformed file or override) or `InputFileError` (no such file).
    """
    sections = Config().to_dict()
    if path is not None:
        _read_config_file(pathlib.Path(path), sections)
    for item in overrides:
        merge_sections(sections, parse_override(item))
    return Config.from_dict(sections).validate()
