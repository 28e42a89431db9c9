"""The package's modules form layers: no module imports, directly or through others, a module that imports it."""

from __future__ import annotations

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import facellm

PACKAGE = Path(facellm.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """facellm modules that `path` imports anywhere (top level or inside functions); `from x import name` counts as
    importing x.name when that is a module, else x."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (
                ".".join(package[: len(package) - node.level + 1] + [node.module or ""]) if node.level else node.module
            )
            base = (base or "").rstrip(".")
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target:
                found.add(target)
    return found - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    paths = list(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, known) for p in paths}


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "facellm.reproduce" in graph["facellm.cli.pipeline"]  # imported inside reproduce_command
    assert "facellm.faces.dlib_models" in graph["facellm.faces.pose"]
    assert len(graph) > 60


def test_no_import_circles():
    try:
        TopologicalSorter(import_graph()).prepare()
    except CycleError as error:
        pytest.fail("import circle: " + " -> ".join(error.args[1]))


def part_of(module: str) -> str:
    """The part a module belongs to: its top-level subpackage or module under facellm."""
    return module.split(".")[1] if "." in module else module


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        if module == "facellm":
            continue
        edges = graph.setdefault(part_of(module), set())
        edges.update(part_of(t) for t in targets if t != "facellm" and part_of(t) != part_of(module))
    return graph


def test_no_two_parts_import_each_other():
    try:
        TopologicalSorter(part_graph()).prepare()
    except CycleError as error:
        pytest.fail("parts import each other: " + " -> ".join(error.args[1]))


def test_the_vocabulary_and_errors_sit_at_the_bottom():
    graph = part_graph()
    assert graph["errors"] == set()
    assert graph["conversation"] <= {"errors"}
    assert "backends" not in graph["specialist"] and "data" not in graph["backends"]


def drawn_layers() -> dict[str, int]:
    """The layer of each part as docs/architecture.md draws it ("N  part part    description")."""
    text = (PACKAGE.parent.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    drawing = text.split("```")[1]
    layers = {}
    for line in drawing.strip().splitlines():
        number, _, rest = line.strip().partition(" ")
        names = re.split(r"\s{4,}", rest.strip())[0].split()
        layers |= {name: int(number) for name in names}
    return layers


def test_the_architecture_page_draws_every_part_below_what_imports_it():
    layers, graph = drawn_layers(), part_graph()
    assert set(graph) - {"__main__"} <= set(layers), set(graph) - set(layers)
    for part, imported in graph.items():
        for other in imported:
            assert part == "__main__" or layers[other] < layers[part], f"{part} (layer {layers[part]}) imports {other}"


# Modules that import a heavy third-party library when imported; the CLI imports them where they are needed.
HEAVY_MODULES = {"facellm.finetune.recipe", "facellm.serve.app"}


def test_own_imports_stand_at_the_top_of_modules():
    """Inside a function, the package imports only its heavy modules (so `facellm --help` stays fast)."""
    inside = set()
    for path in PACKAGE.rglob("*.py"):
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("facellm")):
                    inside.add((module_name(path), node.module))
                elif isinstance(node, ast.Import):
                    inside |= {(module_name(path), a.name) for a in node.names if a.name.startswith("facellm")}
    assert inside, "the check sees no function-level import at all"
    assert {target for _, target in inside} <= HEAVY_MODULES, sorted(inside)
