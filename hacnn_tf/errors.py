"""Errors a user can fix, and the check that an optional extra is installed.

`UserError` is the one base class of errors caused by the user's input (a config field, a file, a data layout, an
option, a missing extra): the `hacnn-tf` command prints them as one line `hacnn-tf SUB: error: ...` with no
traceback, while any other exception is an internal error and keeps its traceback. Each subclass also derives from
the built-in exception that callers already catch (`ValueError`, `FileNotFoundError`, `ImportError`), so library
code can raise them where it raised the built-in before.
"""

from __future__ import annotations

import importlib.util

# The extras of the package (pyproject.toml's optional dependencies) that runtime features need: extra -> the
# modules it installs, as imported.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "litert": ("ai_edge_litert",),
    "onnx": ("onnx", "onnxruntime", "tf2onnx"),
    "openvino": ("openvino", "nncf"),
    "serving": ("grpc", "tensorflow_serving"),
    "torch": ("torch",),
}


class UserError(Exception):
    """An error the user can fix; its message names the file, field or option and says what to do."""


class ConfigError(UserError, ValueError):
    """A config field that is missing, unknown, of the wrong type or out of range, or fields that clash."""


class DataError(UserError, ValueError):
    """A data set, image file or annotation that cannot be read as the layout requires."""


class InputFileError(UserError, FileNotFoundError):
    """A file or folder named on the command line that is missing or of the wrong kind."""


class CheckpointError(UserError, ValueError):
    """A model file (a checkpoint) that exists but is of an unknown kind, corrupt, or not an HA-CNN."""


class ManifestError(CheckpointError):
    """An exported format folder that differs from its `manifest.json` (a file changed, missing or added since the
    export), or whose manifest or links point outside the folder: a corrupt model, not loaded."""


class MissingExtraError(UserError, ImportError):
    """An optional dependency (a package extra) that a requested feature needs is not installed."""


class OutputError(UserError, OSError):
    """A file or folder that could not be written: a full disk or quota, a read-only file system, missing
    permissions. The message names the path and what is needed; `errno` and `filename` are the failed call's."""

    def __init__(self, message: str, errno: int | None = None, filename: str | None = None) -> None:
        super().__init__(message)
        self.errno, self.filename = errno, filename

    def __str__(self) -> str:
        return str(self.args[0])


def install_hint(*extras: str) -> str:
    """`pip install 'hacnn-tf[a,b]'` for `extras` (the serving extra's `tensorflow-serving-api` goes in without its
    dependencies, beside tensorflow-cpu)."""
    line = f"pip install 'hacnn-tf[{','.join(sorted(set(extras)))}]'"
    if "serving" in extras:
        line += " && pip install --no-deps tensorflow-serving-api==2.21.0"
    return line


def missing_extras(*extras: str) -> list[str]:
    """Those of `extras` (names of `EXTRA_MODULES`) whose modules are not all importable, found without importing
    them."""
    unknown = [extra for extra in extras if extra not in EXTRA_MODULES]
    if unknown:
        raise KeyError(f"unknown extras {unknown}; known: {sorted(EXTRA_MODULES)}")
    return [extra for extra in dict.fromkeys(extras) if any(not _findable(module) for module in EXTRA_MODULES[extra])]


def _findable(module: str) -> bool:
    """Whether `import module` would find it (a module blocked in `sys.modules` with None is not)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that does not import, a module without a spec
        return False


def require_extras(feature: str, *extras: str) -> None:
    """Raises `MissingExtraError` naming `feature` and the `pip install` line if any of `extras` is missing."""
    missing = missing_extras(*extras)
    if missing:
        raise MissingExtraError(
            f"{feature} needs the {', '.join(missing)} extra{'s' if len(missing) > 1 else ''}: {install_hint(*missing)}"
        )
