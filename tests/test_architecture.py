"""The import graph of the package reads image -> data -> layers -> models, model -> evaluation/export -> jobs ->
commands: no cycle, and no module imports one of a higher layer (imports inside functions count too)."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "hacnn_tf"

# Layer of each part of the package (a top-level module or subpackage); a part may import its own layer or lower.
LAYERS = {
    "_startup": 0,
    "io_utils": 0,
    "configs": 0,
    "config": 0,
    "errors": 0,
    "manifest": 0,
    "progress": 0,
    "security": 0,
    "training_log": 0,
    "data": 1,
    "layers": 2,
    "models": 3,
    "model": 3,
    "losses": 3,
    "convert": 4,
    "serving": 4,
    "evaluation": 5,
    "runtime": 5,
    "tracking": 5,
    "visualization": 5,
    "export": 6,
    "callbacks": 7,
    "distribute": 7,
    "run_folder": 7,
    "trainer": 7,
    "jobs": 8,
    "cli": 9,
}


def module_name(path: pathlib.Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports() -> dict[str, set[str]]:
    """`{module: modules of hacnn_tf it imports}` with dotted names relative to hacnn_tf (`__init__` for the
    package itself); `from X import Y` counts as importing `X.Y` where that is a module, else `X`."""
    paths = list(ROOT.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    graph = {}
    for path in paths:
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hacnn_tf":
                base = node.module.removeprefix("hacnn_tf").lstrip(".")
                for alias in node.names:
                    candidate = f"{base}.{alias.name}".lstrip(".")
                    found.add(candidate if candidate in modules else base or "__init__")
            elif isinstance(node, ast.Import):
                found.update(a.name.removeprefix("hacnn_tf.") for a in node.names if a.name.startswith("hacnn_tf."))
        graph[module_name(path)] = found
    return graph


def part(module: str) -> str:
    return module.split(".")[0]


def test_every_part_has_a_layer():
    assert {part(m) for m in imports()} - {"__init__"} <= set(LAYERS)


def test_no_import_reaches_a_higher_layer():
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in imports().items()
        if module != "__init__"
        for target in targets
        if target == "__init__"
        and part(module) != "cli"
        or target != "__init__"
        and LAYERS[part(target)] > LAYERS[part(module)]
    )
    assert upward == []


def test_no_import_cycle_between_parts():
    graph: dict[str, set[str]] = {}
    for module, targets in imports().items():
        if module != "__init__":
            graph.setdefault(part(module), set()).update(part(t) for t in targets if part(t) != part(module))
    visiting, done, cycles = set(), set(), []

    def visit(node, path):
        visiting.add(node)
        for target in sorted(graph.get(node, ())):
            if target in visiting:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in done:
                visit(target, [*path, target])
        visiting.discard(node)
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node, [node])
    assert cycles == []
