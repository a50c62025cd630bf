"""Shared fixtures: the torchreid reference modules, loaded from the installed package by file.

`torchreid==0.2.5`'s package `__init__` imports its whole data stack (scipy, torchvision, gdown...), none of which
the reference model or metrics need; the three reference files are plain modules, so they are loaded on their own.
"""

from __future__ import annotations

import importlib.util
import pathlib
import types

import pytest


def _torchreid_root() -> pathlib.Path:
    spec = importlib.util.find_spec("torchreid")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("torchreid==0.2.5 is not installed: `pip install -e .[test]` installs it")
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


def load_torchreid_module(relative_path: str) -> types.ModuleType:
    """Loads one file of the installed torchreid package (e.g. `reid/models/hacnn.py`) as a standalone module."""
    path = _torchreid_root() / relative_path
    name = "torchreid_reference_" + relative_path.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def torchreid_hacnn() -> types.ModuleType:
    return load_torchreid_module("reid/models/hacnn.py")


@pytest.fixture(scope="session")
def torchreid_rank() -> types.ModuleType:
    return load_torchreid_module("reid/metrics/rank.py")


@pytest.fixture(scope="session")
def torchreid_rerank() -> types.ModuleType:
    return load_torchreid_module("reid/utils/rerank.py")
