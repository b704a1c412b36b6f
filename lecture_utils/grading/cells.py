"""What the grader reads in a notebook without running it: the notebooks named on the command line, a notebook's
chapter, its exercise cells (by the manifest's header pattern, :data:`lecture_utils.chapters.EXERCISE_HEADER`), the
names a cell binds and reads, and the plan of each exercise's re-check (its cell and the earlier exercise cells it
uses)."""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from pathlib import Path

from lecture_utils.chapters import header_of


def find_notebooks(paths: list[str | Path]) -> list[Path]:
    """Notebook files named directly, and the ``*.ipynb`` files inside named folders (sorted)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.glob("*.ipynb") if not q.name.startswith("."))
        elif p.exists():
            if p.suffix != ".ipynb":
                raise ValueError(f"{p} is not a notebook (.ipynb): name notebooks or folders of notebooks")
            found.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return found


def chapter_of(path: Path) -> int | None:
    """The chapter a notebook's name starts with (``04_self_attention.ipynb`` -> 4), or None."""
    m = re.match(r"^(\d+)_", path.name)
    return int(m.group(1)) if m else None


def _parse(source: str):
    """The cell's AST, with IPython magic lines blanked; None when it is not Python."""
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def defined_names(source: str) -> set[str]:
    """Names a cell binds at its top level (functions, classes, assignments, imports)."""
    tree = _parse(source)
    out: set[str] = set()
    if tree is None:
        return out
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                out |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return out


def free_names(source: str) -> set[str]:
    """Global names a cell reads without binding them itself (builtins excluded); an over-estimate."""
    tree = _parse(source)
    if tree is None:
        return set()
    loads, stores = set(), set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            (loads if isinstance(n.ctx, ast.Load) else stores).add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stores.add(n.name)
        elif isinstance(n, ast.arg):
            stores.add(n.arg)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            stores |= {(a.asname or a.name).split(".")[0] for a in n.names}
        elif isinstance(n, ast.ExceptHandler) and n.name:
            stores.add(n.name)
    return loads - stores - set(dir(builtins))


def exercise_cells(nb) -> list[tuple[int, str, str]]:
    """(cell index, exercise id, source) for every code cell whose first line is '# Exercise N.M: ...'."""
    found = []
    for i, cell in enumerate(nb.cells):
        header = header_of(cell.source) if cell.cell_type == "code" else None
        if header is not None:
            found.append((i, header[0], cell.source))
    return found


@dataclass
class Plan:
    """What the re-check of one exercise needs: its cell and the earlier exercise cells it uses."""

    id: str
    cells: list[tuple[str, str]]  # (exercise id, source), dependencies first
    context: tuple[str, ...]  # the other global names those cells read


def plan(present: list[tuple[int, str, str]], registry) -> dict[str, Plan]:
    plans: dict[str, Plan] = {}
    source = {ex: src for _, ex, src in present}
    order = [ex for _, ex, _ in present if ex in registry]
    defines = {ex: defined_names(source[ex]) for ex in order}
    for k, ex in enumerate(order):
        chain, todo = [ex], [ex]
        while todo:  # earlier exercise cells that define a name this chain reads
            cur = todo.pop()
            for name in free_names(source[cur]):
                for dep in reversed(order[:k]):
                    if name in defines[dep]:
                        if dep not in chain:
                            chain.append(dep)
                            todo.append(dep)
                        break
        cells = [(e, source[e]) for e in order if e in chain]
        bound = set().union(*(defines[e] for e, _ in cells))
        reads = set().union(*(free_names(s) for _, s in cells)) - bound
        plans[ex] = Plan(ex, cells, tuple(sorted(reads)))
    return plans
