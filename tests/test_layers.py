"""emkit's import graph: no circle, and no module imports from a layer above its own.

Every module of ``src/emkit`` is parsed (not imported); every ``import`` and
``from ... import`` counts, at any depth (imports inside functions too), except
those under ``if TYPE_CHECKING:``. Run alone with
``python -m pytest tests/test_layers.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "emkit"

# Layers from the bottom up; a module may import its own layer and those below.
# A module is in the layer of the longest prefix of its name listed here.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("emkit.core",)),
    ("data", ("emkit.data", "emkit.datasets")),
    ("distributions", ("emkit.distributions",)),
    ("latent", ("emkit.latent",)),
    ("services", ("emkit.io", "emkit.plot")),
    ("estimators", ("emkit.estimators",)),
    ("applications", ("emkit", "emkit.cli", "emkit.demos")),
]

MAX_TOP_MODULES = 8


def module_name(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def all_modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of the longest listed prefix of ``module``."""
    best, found = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    if found is None:
        raise LookupError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of import nodes under ``if TYPE_CHECKING:`` (not run, so no dependency)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(inner) for inner in ast.walk(node))
    return skip


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """emkit modules ``module`` imports, each resolved to the module it names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_only(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return {name for name in found if name == "emkit" or name.startswith("emkit.")}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = all_modules(package)
    graph = {}
    for name, path in modules.items():
        targets = imports_of(name, path, modules)
        unknown = targets - set(modules)
        assert not unknown, f"{name} imports modules that do not exist: {sorted(unknown)}"
        graph[name] = targets - {name}
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} ({LAYERS[layer_of(source)][0]}) imports {target} "
        f"({LAYERS[layer_of(target)][0]})"
        for source, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(source)
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_every_module_has_a_layer():
    missing = []
    for name in all_modules():
        try:
            layer_of(name)
        except LookupError as exc:
            missing.append(str(exc))
    assert not missing, "\n".join(missing)


def test_no_import_reaches_a_higher_layer():
    assert upward_imports(import_graph()) == []


def test_no_import_circle():
    assert find_cycle(import_graph()) is None


def test_top_of_the_package_stays_small():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= MAX_TOP_MODULES, sorted(top)


def _write(root: Path, files: dict[str, str]) -> Path:
    package = root / "emkit"
    for rel, text in files.items():
        path = package / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


@pytest.mark.parametrize(
    ("files", "upward", "cycle"),
    [
        # a function-level import from core up to the estimators: caught
        ({"core/engine.py": "def f():\n    from emkit.estimators import kmeans\n",
          "estimators/kmeans.py": "import emkit.core.engine\n"},
         ["emkit.core.engine (core) imports emkit.estimators.kmeans (estimators)"],
         ["emkit.core.engine", "emkit.estimators.kmeans", "emkit.core.engine"]),
        # relative imports resolve; a type-only import is no dependency
        ({"data/a.py": "from ..core import engine\n",
          "core/engine.py": "from typing import TYPE_CHECKING\n"
                            "if TYPE_CHECKING:\n    from emkit.data import a\n"},
         [], None),
    ],
)
def test_the_checks_catch_what_they_are_for(tmp_path, files, upward, cycle):
    base = {"__init__.py": "", "core/__init__.py": "", "data/__init__.py": "",
            "estimators/__init__.py": ""}
    graph = import_graph(_write(tmp_path, {**base, **files}))
    assert upward_imports(graph) == upward
    assert find_cycle(graph) == cycle
