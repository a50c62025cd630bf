"""Every name a benchmark imports from the package or from another benchmark exists.

The benchmarks import most of the package inside their functions (so that `--help` and the torch-only parts start
fast), which the import of the module itself does not check: a name that moved breaks `make bench` minutes in.
"""

import ast
import importlib
import pathlib

import pytest

BENCHMARKS = sorted((pathlib.Path(__file__).parents[2] / "benchmarks").glob("*.py"))


def _imported_names(path: pathlib.Path) -> list[tuple[int, str, str]]:
    """(line, module, name) of every `from hacnn_tf... / benchmarks... import name`, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("hacnn_tf", "benchmarks"):
            found.extend((node.lineno, node.module, alias.name) for alias in node.names)
    return found


def test_the_benchmarks_are_found():
    assert {path.stem for path in BENCHMARKS} >= {"run", "formats", "harness", "models", "tracking"}


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda path: path.name)
def test_every_imported_name_exists(path):
    missing = []
    for line, module_name, name in _imported_names(path):
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{path.name}:{line}: from {module_name} import {name}")
    assert not missing, missing
