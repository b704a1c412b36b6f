"""The package's import graph: no cycle, nothing imported upward, and the layers the design document draws.

``docs/architecture.md`` holds the one table of layers (layer number, its modules); this file reads it and
checks every ``import`` in ``lecture_utils`` against it, function-local imports included (a cycle hidden
inside a function is still a cycle: it only moves the ImportError or the half-initialised module to the first
call). Imports under ``if TYPE_CHECKING:`` are left out: they never run.

A module may import modules of its own layer or of a lower one; two modules of one layer must not import
each other, directly or round a loop. Nothing inside the package imports the package root ``lecture_utils``
(the learner's face: ``smoke``, ``progress``), and no module of a subpackage imports its subpackage's
``__init__`` (the face of that subpackage): it imports the sibling module that defines the name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lecture_utils"
DOC = ROOT / "docs" / "architecture.md"


# ---------------------------------------------------------------------------------------------------------------
# the scan
# ---------------------------------------------------------------------------------------------------------------

def module_files(package: Path) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by its own name, for its ``__init__.py``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _under_type_checking(tree: ast.AST) -> set[int]:
    """The ids of import nodes that sit under ``if TYPE_CHECKING:``."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    return skipped


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """The package modules that module ``name`` imports, each with the first line that imports it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = _under_type_checking(tree)
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    root = next(iter(modules)).split(".")[0] if modules else ""
    found: dict[str, int] = {}

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                       for alias in node.names]
        for target in targets:
            if not (target == root or target.startswith(root + ".")):
                continue
            resolved = resolve(target)
            if resolved and resolved != name:
                found.setdefault(resolved, node.lineno)
    return found


def import_graph(package: Path) -> dict[str, dict[str, int]]:
    modules = module_files(package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def upward_into_a_face(graph: dict[str, dict[str, int]]) -> list[str]:
    """Imports of the package root, or of a subpackage's ``__init__`` from inside that subpackage."""
    bad = []
    for name, targets in sorted(graph.items()):
        for target, line in targets.items():
            if "." not in target or name.startswith(target + "."):
                bad.append(f"{name} (line {line}) imports {target}")
    return bad


def layers_from(doc: str, package: str = "lecture_utils") -> dict[str, int]:
    """Read the layer table of the design document: rows ``| <n> ... | `mod`, `mod`, `sub.*` | ... |``."""
    layer_of: dict[str, int] = {}
    for line in doc.splitlines():
        row = re.match(r"^\|\s*(\d+)\b[^|]*\|([^|]*)\|", line)
        if not row:
            continue
        number = int(row.group(1))
        for module in re.findall(r"`([\w.*]+)`", row.group(2)):
            full = package if module == package else f"{package}.{module}"
            if full in layer_of:
                raise ValueError(f"{module} is in two layers of the table")
            layer_of[full] = number
    return layer_of


def layer_lookup(layer_of: dict[str, int], module: str) -> int | None:
    if module in layer_of:
        return layer_of[module]
    parts = module.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        wildcard = ".".join(parts[:cut]) + ".*"
        if wildcard in layer_of:
            return layer_of[wildcard]
    return None


def upward_across_layers(graph, layer_of) -> list[str]:
    bad = []
    for name, targets in sorted(graph.items()):
        mine = layer_lookup(layer_of, name)
        for target, line in targets.items():
            theirs = layer_lookup(layer_of, target)
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(f"{name} (layer {mine}, line {line}) imports {target} (layer {theirs})")
    return bad


# ---------------------------------------------------------------------------------------------------------------
# the package
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graph():
    return import_graph(PACKAGE)


@pytest.fixture(scope="module")
def layer_of():
    return layers_from(DOC.read_text(encoding="utf-8"))


def test_the_package_has_no_import_cycle(graph):
    found = cycles(graph)
    assert not found, "import cycles (each a set of modules that import each other, function-local imports " \
                      f"included): {found}"


def test_nothing_imports_the_package_root_or_its_own_subpackage_face(graph):
    bad = upward_into_a_face(graph)
    assert not bad, "upward imports into a package's __init__ (import the module that defines the name):\n" + \
                    "\n".join(bad)


def test_every_module_is_in_one_layer_of_the_design_document(graph, layer_of):
    unplaced = [m for m in graph if layer_lookup(layer_of, m) is None]
    assert not unplaced, f"modules missing from the layer table of {DOC.relative_to(ROOT)}: {unplaced}"
    stale = [m for m in layer_of if not m.endswith(".*") and m not in graph]
    assert not stale, f"the layer table of {DOC.relative_to(ROOT)} names modules that do not exist: {stale}"


def test_imports_only_run_downhill(graph, layer_of):
    bad = upward_across_layers(graph, layer_of)
    assert not bad, "imports into a higher layer (move the name down, or the importer up):\n" + "\n".join(bad)


# ---------------------------------------------------------------------------------------------------------------
# the scan itself can fail: a made-up package with each fault
# ---------------------------------------------------------------------------------------------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "lecture_utils"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_cycle_hidden_in_a_function_is_found(tmp_path):
    root = _package(tmp_path, {
        "a.py": "from lecture_utils.b import thing\n",
        "b.py": "def thing():\n    from lecture_utils import a\n    return a\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lecture_utils.a import thing\n",
    })
    found = cycles(import_graph(root))
    assert found == [["lecture_utils.a", "lecture_utils.b"]]


def test_relative_imports_and_faces_are_resolved(tmp_path):
    root = _package(tmp_path, {
        "sub/__init__.py": "from .impl import f\n",
        "sub/impl.py": "from . import other\nfrom lecture_utils.sub import f\n",
        "sub/other.py": "import lecture_utils\n",
    })
    graph = import_graph(root)
    assert graph["lecture_utils.sub.impl"] == {"lecture_utils.sub.other": 1, "lecture_utils.sub": 2}
    assert upward_into_a_face(graph) == [
        "lecture_utils.sub.impl (line 2) imports lecture_utils.sub",
        "lecture_utils.sub.other (line 1) imports lecture_utils",
    ]


def test_an_import_into_a_higher_layer_is_named(tmp_path):
    root = _package(tmp_path, {"low.py": "from lecture_utils import high\n", "high.py": ""})
    layer_of = layers_from("| layer | modules |\n|---|---|\n| 0 base | `low` |\n| 1 top | `high`, `sub.*` |\n")
    assert layer_of == {"lecture_utils.low": 0, "lecture_utils.high": 1, "lecture_utils.sub.*": 1}
    assert upward_across_layers(import_graph(root), layer_of) == [
        "lecture_utils.low (layer 0, line 1) imports lecture_utils.high (layer 1)"]


MAX_LINES = 650  # a module a maintainer reads in one sitting (issue 31); split by concern, not by line count


def test_no_module_is_longer_than_a_sitting():
    long = {name: n for name, path in module_files(PACKAGE).items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by what they own): {long}"
