"""The experiment configs, shipped with the package: `<dataset>_<recipe>_<losses>.yaml` built from `recipes/` by
their `base:` lists, and `demo_synthetic.yaml`. The repository's `training/configs/` is a link to this folder."""

from __future__ import annotations

import importlib.resources
import os
import pathlib

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def configs_dir() -> pathlib.Path:
    """The folder of the packaged configs (a real folder: the package is installed unzipped)."""
    return pathlib.Path(str(importlib.resources.files(__name__)))


def list_configs() -> list[str]:
    """Names of the packaged configs (recipes excluded), e.g. `market1501_paper_softmax`."""
    return sorted(path.stem for path in configs_dir().iterdir() if path.suffix in CONFIG_SUFFIXES)


def resolve_config(name_or_path: str | os.PathLike) -> pathlib.Path:
    """A config file: `name_or_path` itself when it is a file, else the packaged config of that name (with or
    without `.yaml`); a `FileNotFoundError` lists the packaged names otherwise."""
    path = pathlib.Path(name_or_path)
    if path.is_file():
        return path
    packaged = configs_dir() / path.name
    for candidate in (packaged, packaged.with_name(packaged.name + ".yaml")):
        if candidate.is_file() and candidate.suffix in CONFIG_SUFFIXES:
            return candidate
    raise FileNotFoundError(
        f"Config {str(name_or_path)!r} is neither a file nor a packaged config; packaged: {', '.join(list_configs())}"
    )
